package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// testProxy is the forwarding loop skein-proxy's HTTP path will run, cut
// down to what the codec needs proving: every request on a downstream
// connection goes to one backend over pooled keep-alive connections.
type testProxy struct {
	ln      net.Listener
	backend string
	accepts atomic.Int64 // downstream connections accepted
	dials   atomic.Int64 // upstream connections dialled

	mu   sync.Mutex
	idle []*upstreamConn
}

type upstreamConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func startProxy(t testing.TB, backend string) *testProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &testProxy{ln: ln, backend: backend}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepts.Add(1)
			go p.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, u := range p.idle {
			u.c.Close()
		}
	})
	return p
}

func (p *testProxy) addr() string { return p.ln.Addr().String() }

func (p *testProxy) get() (*upstreamConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		u := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return u, nil
	}
	p.mu.Unlock()
	c, err := net.Dial("tcp", p.backend)
	if err != nil {
		return nil, err
	}
	p.dials.Add(1)
	return &upstreamConn{c: c, r: NewReader(c), w: NewWriter(c)}, nil
}

func (p *testProxy) put(u *upstreamConn, reuse bool) {
	if !reuse {
		u.c.Close()
		PutReader(u.r)
		PutWriter(u.w)
		return
	}
	p.mu.Lock()
	p.idle = append(p.idle, u)
	p.mu.Unlock()
}

// serve runs one downstream connection.
func (p *testProxy) serve(c net.Conn) {
	defer c.Close()
	br, bw := NewReader(c), NewWriter(c)
	defer PutReader(br)
	defer PutWriter(bw)
	var req RequestHead
	var resp ResponseHead
	for {
		err := ParseRequestHead(br, &req)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				writeError(bw, e.Status)
			}
			return
		}
		u, err := p.get()
		if err != nil {
			writeError(bw, 502)
			return
		}
		keep, upKeep, err := p.exchange(c, br, bw, u, &req, &resp)
		if err == errUpgraded {
			return
		}
		p.put(u, err == nil && upKeep)
		if err != nil || !keep {
			return
		}
	}
}

var errUpgraded = errors.New("upgraded")

// exchange forwards one request and its response, and reports whether the
// downstream and upstream connections may carry another.
func (p *testProxy) exchange(c net.Conn, br *bufio.Reader, bw *bufio.Writer, u *upstreamConn, req *RequestHead, resp *ResponseHead) (keep, upKeep bool, err error) {
	reqBody := req.Body
	keep = !req.Close
	expect := req.ExpectsContinue()
	req.StripHopByHop()
	if err := WriteRequestHead(u.w, req); err != nil {
		return false, false, err
	}
	bodySent := false
	if expect {
		if err := u.w.Flush(); err != nil {
			return false, false, err
		}
	} else {
		if _, err := CopyBody(u.w, br, reqBody, reqBody); err != nil {
			return false, false, err
		}
		bodySent = true
	}
	for {
		if err := ParseResponseHead(u.r, resp, req.Method()); err != nil {
			writeError(bw, 502)
			return false, false, err
		}
		if !resp.Informational() {
			break
		}
		resp.StripHopByHop()
		if err := WriteResponseHead(bw, resp); err != nil {
			return false, false, err
		}
		if err := bw.Flush(); err != nil {
			return false, false, err
		}
		if resp.Status == 100 && !bodySent {
			if _, err := CopyBody(u.w, br, reqBody, reqBody); err != nil {
				return false, false, err
			}
			bodySent = true
		}
	}
	if !bodySent {
		// The client may still send the body it held back: this
		// connection cannot tell it from a next request.
		keep = false
	}
	if resp.Upgrading() {
		resp.StripHopByHop()
		if err := WriteResponseHead(bw, resp); err != nil {
			return false, false, err
		}
		if err := bw.Flush(); err != nil {
			return false, false, err
		}
		tunnel(c, br, u)
		return false, false, errUpgraded
	}
	upKeep = !resp.Close && bodySent
	in := resp.Body
	out := in.For(req.Proto)
	resp.StripHopByHop()
	resp.Proto = req.Proto
	keep = keep && out.Kind != UntilClose
	resp.Close = !keep
	resp.Body = out
	if err := WriteResponseHead(bw, resp); err != nil {
		return false, false, err
	}
	if _, err := CopyBody(bw, u.r, in, out); err != nil {
		return false, false, err
	}
	return keep, upKeep, nil
}

// tunnel copies raw bytes both ways after a 101, starting with whatever
// either side's reader already holds, until both directions end.
func tunnel(c net.Conn, br *bufio.Reader, u *upstreamConn) {
	done := make(chan struct{})
	go func() {
		io.Copy(u.c, br)
		u.c.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, u.r)
	c.(*net.TCPConn).CloseWrite()
	<-done
	u.c.Close()
}

func writeError(w *bufio.Writer, status int) {
	w.WriteString("HTTP/1.1 ")
	w.WriteString(strconv.Itoa(status))
	w.WriteString(" Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	w.Flush()
}

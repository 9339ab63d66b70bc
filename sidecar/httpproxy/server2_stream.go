package httpproxy

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The HTTP/2 server's streams: the workers that run them, the request
// body, the ResponseWriter, and the encoding of header blocks.

// streamTasks hands streams to idle workers: goroutines that served a
// stream and wait a while for the next, so that a request does not start
// on a new goroutine's small stack and grow it (a copy each time) on its
// way through the router and the HTTP/1 codec.
var streamTasks = make(chan streamTask)

type streamTask struct {
	s *h2stream
	r *http.Request
}

// streamWorkerIdle is how long a worker waits for another stream.
const streamWorkerIdle = 10 * time.Second

func startStream(s *h2stream, r *http.Request) {
	select {
	case streamTasks <- streamTask{s, r}:
	default:
		go streamWorker(s, r)
	}
}

func streamWorker(s *h2stream, r *http.Request) {
	s.run(r)
	idle := time.NewTimer(streamWorkerIdle)
	defer idle.Stop()
	for {
		select {
		case t := <-streamTasks:
			t.s.run(t.r)
			idle.Reset(streamWorkerIdle)
		case <-idle.C:
			return
		}
	}
}

// run serves the stream's request and ends the stream.
func (s *h2stream) run(r *http.Request) {
	c := s.c
	w := &h2writer{s: s, req: r}
	defer func() {
		p := recover()
		c.mu.Lock()
		if p != nil {
			if p != http.ErrAbortHandler {
				c.h.deps.Log.Error(nil, "HTTP/2 handler panicked", "panic", p)
			}
			c.resetLocked(s.id, http2.ErrCodeInternal)
		} else if !s.reset && !c.done {
			if !s.bodyEnded {
				// Done before the client finished sending: tell it to
				// stop (RFC 9113 8.1).
				c.resetLocked(s.id, http2.ErrCodeNo)
			}
		}
		s.handlerDone = true
		s.ctx.cancel(context.Canceled)
		c.maybeForgetLocked(s)
		c.mu.Unlock()
		w.release()
		c.handlers.Done()
	}()
	c.handler.ServeHTTP(w, r)
	w.finish()
}

// h2body is a request body: the DATA frames as they arrive.
type h2body struct{ s *h2stream }

func (b *h2body) Read(p []byte) (int, error) {
	s := b.s
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for s.bodyOff == len(s.body) && !s.bodyEnded && !s.bodyClosed {
		s.cond.Wait()
	}
	if s.bodyOff < len(s.body) {
		n := copy(p, s.body[s.bodyOff:])
		s.bodyOff += n
		c.refundLocked(s, n)
		return n, nil
	}
	if s.bodyErr != nil {
		return 0, s.bodyErr
	}
	if s.bodyClosed {
		return 0, http.ErrBodyReadAfterClose
	}
	return 0, io.EOF
}

func (b *h2body) Close() error {
	s := b.s
	c := s.c
	c.mu.Lock()
	if !s.bodyClosed {
		s.bodyClosed = true
		c.refundLocked(nil, len(s.body)-s.bodyOff)
		s.body, s.bodyOff = nil, 0
		s.cond.Broadcast()
	}
	c.mu.Unlock()
	return nil
}

// h2writer is a stream's http.ResponseWriter.
type h2writer struct {
	s       *h2stream
	req     *http.Request
	hdr     http.Header
	status  int
	sent    bool // HEADERS sent
	noBody  bool
	buf     []byte // body not sent yet
	bufPool *[]byte
	wrote   int64
	err     error
}

var (
	_ http.ResponseWriter = (*h2writer)(nil)
	_ http.Flusher        = (*h2writer)(nil)
)

var h2Bufs = sync.Pool{New: func() any { b := make([]byte, 0, h2Chunk); return &b }}

func (w *h2writer) Header() http.Header {
	if w.hdr == nil {
		w.hdr = make(http.Header)
	}
	return w.hdr
}

func (w *h2writer) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return // informational responses are not forwarded
	}
	w.status = code
	w.noBody = w.req.Method == "HEAD" || code == 204 || code == 304
}

func (w *h2writer) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		return len(p), nil
	}
	if w.bufPool == nil {
		w.bufPool = h2Bufs.Get().(*[]byte)
		w.buf = (*w.bufPool)[:0]
	}
	n := len(p)
	for len(p) > 0 {
		m := min(len(p), h2Chunk-len(w.buf))
		w.buf = append(w.buf, p[:m]...)
		p = p[m:]
		if len(w.buf) == h2Chunk {
			if err := w.send(false); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (w *h2writer) Flush() { w.FlushError() }

func (w *h2writer) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	if w.err != nil {
		return w.err
	}
	return w.send(false)
}

// finish ends the response: what is buffered, then END_STREAM on the last
// frame, or trailers.
func (w *h2writer) finish() {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	if w.err == nil {
		w.send(true)
	}
}

func (w *h2writer) release() {
	if w.bufPool != nil {
		*w.bufPool = w.buf[:0]
		h2Bufs.Put(w.bufPool)
		w.bufPool, w.buf = nil, nil
	}
}

// trailers are the response's trailers: fields declared in Trailer and
// set after the head, and those named with http.TrailerPrefix.
func (w *h2writer) trailers() http.Header {
	var t http.Header
	for k, vs := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if t == nil {
				t = make(http.Header)
			}
			t[http.CanonicalHeaderKey(name)] = vs
		}
	}
	for _, v := range w.hdr["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if vs := w.hdr[k]; len(vs) > 0 {
				if t == nil {
					t = make(http.Header)
				}
				t[k] = vs
			}
		}
	}
	return t
}

// send sends the head if not yet sent, and what is buffered; end ends the
// stream (with trailers if there are any).
func (w *h2writer) send(end bool) error {
	s := w.s
	c := s.c
	var trailers http.Header
	if end {
		trailers = w.trailers()
	}
	endData := end && len(trailers) == 0
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.reset || c.done {
		w.err = errStreamClosed
		return w.err
	}
	ended := false
	if !w.sent {
		w.sent = true
		if endData && len(w.buf) > 0 && !w.hdrHas("Content-Length") {
			w.Header()["Content-Length"] = []string{strconv.Itoa(len(w.buf))}
		}
		ended = endData && len(w.buf) == 0
		c.writeHeadersLocked(s.id, w.status, w.hdr, ended)
	}
	p := w.buf
	for len(p) > 0 {
		for s.sendWindow <= 0 || c.sendWindow <= 0 || len(c.wbuf) >= h2MaxBuffered {
			if s.reset || c.done {
				w.err = errStreamClosed
				return w.err
			}
			// What this loop queued must go out before the window
			// it waits for can open.
			c.queued()
			switch {
			case s.sendWindow <= 0:
				s.cond.Wait()
			case c.sendWindow <= 0:
				c.connCond.Wait()
			default:
				c.room.Wait()
			}
		}
		if s.reset || c.done {
			w.err = errStreamClosed
			return w.err
		}
		n := min(len(p), c.peerFrame, int(min(s.sendWindow, c.sendWindow)))
		ended = endData && n == len(p)
		c.wfr.WriteData(s.id, ended, p[:n])
		s.sendWindow -= int64(n)
		c.sendWindow -= int64(n)
		w.wrote += int64(n)
		p = p[n:]
	}
	w.buf = w.buf[:0]
	if endData && !ended {
		c.wfr.WriteData(s.id, true, nil) // the head or the body went out before
	}
	if len(trailers) > 0 {
		c.writeHeadersLocked(s.id, 0, trailers, true)
	}
	c.queued()
	return nil
}

func (w *h2writer) hdrHas(k string) bool {
	_, ok := w.hdr[k]
	return ok
}

// headerBlock appends HPACK output to hbuf.
type headerBlock struct{ c *h2conn }

func (b headerBlock) Write(p []byte) (int, error) {
	b.c.hbuf = append(b.c.hbuf, p...)
	return len(p), nil
}

// writeHeadersLocked encodes and queues a HEADERS frame (and
// CONTINUATIONs): the response head when status is not 0, trailers
// otherwise.
func (c *h2conn) writeHeadersLocked(id uint32, status int, hdr http.Header, end bool) {
	if c.done {
		return
	}
	c.hbuf = c.hbuf[:0]
	if status != 0 {
		c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	}
	for k, vs := range hdr {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		name := lowerName(k)
		switch name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			continue
		}
		for _, v := range vs {
			if name == "te" && v != "trailers" {
				continue
			}
			c.henc.WriteField(hpack.HeaderField{Name: name, Value: v})
		}
	}
	block := c.hbuf
	first := true
	for first || len(block) > 0 {
		n := min(len(block), c.peerFrame)
		frag := block[:n]
		block = block[n:]
		if first {
			c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
			first = false
		} else {
			c.wfr.WriteContinuation(id, len(block) == 0, frag)
		}
	}
	c.queued()
}

// statusText is the :status value of a status code.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 404:
		return "404"
	case 503:
		return "503"
	}
	return strconv.Itoa(code)
}

// commonLower maps canonical header names to their lower-case wire form,
// commonCanonical lower-case and canonical names (and ETag) to the
// canonical form: no allocation for the usual ones.
var (
	commonLower     = map[string]string{}
	commonCanonical = map[string]string{}
)

func init() {
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Accept-Ranges", "Age",
		"Authorization", "Cache-Control", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Type", "Cookie", "Date", "Etag", "Expires", "Grpc-Encoding", "Grpc-Accept-Encoding",
		"Grpc-Message", "Grpc-Status", "Grpc-Timeout", "If-Modified-Since", "If-None-Match", "Last-Modified",
		"Location", "Origin", "Referer", "Server", "Set-Cookie", "Te", "Trailer", "User-Agent", "Vary",
		"X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id", HeaderReason} {
		l := strings.ToLower(k)
		commonLower[k] = l
		commonCanonical[l] = k
		commonCanonical[k] = k
	}
	commonCanonical["ETag"] = "Etag"
}

func lowerName(k string) string {
	if l, ok := commonLower[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

func canonicalLower(k string) string {
	if c, ok := commonCanonical[k]; ok {
		return c
	}
	return http.CanonicalHeaderKey(k)
}

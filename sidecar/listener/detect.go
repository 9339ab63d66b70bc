package listener

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Protocol detection, for chains that end in the HCM (HTTP, HTTP2, GRPC and
// AUTO ports: the control plane sends the same HCM for all of them).
//
// The first bytes decide: the HTTP/2 preface is HTTP/2; a complete HTTP/1
// request line (token, space, target, space, "HTTP/1.0" or "HTTP/1.1", end
// of line) is HTTP/1; 0x16 0x03 (a TLS handshake record) is TLS; a byte
// that can start neither is other. Bytes that could still become HTTP are
// waited for, up to MaxDetectBytes (8 KiB, Envoy's http_inspector limit).
//
// On a use_original_dst listener, a connection whose bytes are not HTTP,
// or that sends nothing for the detection timeout (150 ms by default; a
// server-speaks-first protocol such as MySQL or SMTP, whose client waits
// for the server's banner), goes to the passthrough (the original
// destination) with the bytes read so far replayed: what Istio does on AUTO
// ports ("passthrough on sniff failure"). The timeout starts again with
// each read that keeps the bytes HTTP-like, so a slow HTTP client is not
// cut off mid-line while a silent one costs one timeout.
//
// The passthrough skips the HCM's HTTP filters: on an inbound chain those
// are its authorization (RBAC) filters. Until the authorization issue gives
// the fallback the chain's policy, an assembly that enforces authorization
// sets Config.Fallback to a handler that refuses inbound connections
// (ConnInfo.Direction) rather than passing them through unchecked.
//
// A listener without use_original_dst has no original destination to fall
// back to: there the bytes only choose between HTTP/2 (the preface) and
// HTTP/1 (anything else, for the HCM to answer), and a connection silent
// for PlainDetectTimeout is closed.

// DefaultDetectTimeout is how long a capture listener waits for a
// connection's first bytes on an HCM chain before passing it through.
const DefaultDetectTimeout = 150 * time.Millisecond

// PlainDetectTimeout is how long a listener without use_original_dst waits
// for the first bytes on an HCM chain before closing the connection.
const PlainDetectTimeout = 10 * time.Second

// MaxDetectBytes bounds how much detection reads before deciding.
const MaxDetectBytes = 8 << 10

var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// classify returns what b (a connection's first bytes) is, and whether
// that is final; ProtocolUnknown with false means "read more".
func classify(b []byte) (p Protocol, final bool) {
	if len(b) == 0 {
		return ProtocolUnknown, false
	}
	if b[0] == 0x16 {
		if len(b) == 1 {
			return ProtocolUnknown, false
		}
		if b[1] == 0x03 {
			return ProtocolTLS, true
		}
		return ProtocolOther, true
	}
	n := min(len(b), len(http2Preface))
	if bytes.Equal(b[:n], http2Preface[:n]) {
		if n == len(http2Preface) {
			return ProtocolHTTP2, true
		}
		return ProtocolUnknown, false
	}
	return classifyHTTP1(b)
}

// classifyHTTP1 checks b against an HTTP/1 request line.
func classifyHTTP1(b []byte) (Protocol, bool) {
	i := 0
	for i < len(b) && isTokenChar(b[i]) { // method
		i++
	}
	if i == len(b) {
		if i >= 32 { // no method is that long
			return ProtocolOther, true
		}
		return ProtocolUnknown, false
	}
	if i == 0 || b[i] != ' ' {
		return ProtocolOther, true
	}
	i++
	start := i
	for i < len(b) && b[i] > ' ' && b[i] < 0x7f { // request target
		i++
	}
	if i == len(b) {
		return ProtocolUnknown, false
	}
	if i == start || b[i] != ' ' {
		return ProtocolOther, true
	}
	i++
	rest := b[i:]
	for _, v := range [...]string{"HTTP/1.1\r\n", "HTTP/1.0\r\n", "HTTP/1.1\n", "HTTP/1.0\n"} {
		n := min(len(rest), len(v))
		if string(rest[:n]) == v[:n] {
			if n == len(v) {
				return ProtocolHTTP1, true
			}
			if n == len(rest) {
				return ProtocolUnknown, false
			}
		}
	}
	return ProtocolOther, true
}

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

var detectBufs = sync.Pool{New: func() any { b := make([]byte, MaxDetectBytes); return &b }}

// detect reads c's first bytes until classify decides, the bytes reach
// MaxDetectBytes (other), or c is silent for timeout. It returns what it
// found and a connection that replays the bytes read; on a read error other
// than the timeout, ok is false and c should be closed.
func detect(c net.Conn, timeout time.Duration) (p Protocol, replay net.Conn, ok bool) {
	bp := detectBufs.Get().(*[]byte)
	defer detectBufs.Put(bp)
	buf := (*bp)[:0]
	final := false
	for !final && len(buf) < MaxDetectBytes {
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		n, err := c.Read(buf[len(buf):MaxDetectBytes])
		buf = buf[:len(buf)+n]
		if n > 0 {
			p, final = classify(buf)
		}
		if final {
			break
		}
		if err != nil {
			ne, isNet := err.(net.Error)
			if !errors.Is(err, io.EOF) && !(isNet && ne.Timeout()) {
				return ProtocolUnknown, nil, false
			}
			// Silent (a server speaks first), or stalled or ended before
			// the bytes decided: not HTTP.
			p = ProtocolUnknown
			if len(buf) > 0 {
				p = ProtocolOther
			}
			final = true
		}
	}
	if !final && len(buf) >= MaxDetectBytes {
		p = ProtocolOther
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c}
	if len(buf) > 0 {
		pc.buf = bytes.Clone(buf)
	}
	return p, pc, true
}

// peekedConn is a connection whose first bytes were read by detection: its
// reads return them before reading the connection again.
type peekedConn struct {
	net.Conn
	buf []byte
}

func (c *peekedConn) Read(b []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(b, c.buf)
		c.buf = c.buf[n:]
		if len(c.buf) == 0 {
			c.buf = nil
		}
		return n, nil
	}
	return c.Conn.Read(b)
}

// CloseWrite half-closes the connection when the underlying one can.
func (c *peekedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// NetConn returns the connection under the replayed bytes; read from it
// only once Read has returned them all.
func (c *peekedConn) NetConn() net.Conn { return c.Conn }

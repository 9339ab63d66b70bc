package http1

import (
	"bufio"
	"bytes"
)

// RequestHead is a parsed request line and header section. Parse into the
// same RequestHead for every request on a connection: its memory is reused.
// The zero value is an empty head ready to parse into.
type RequestHead struct {
	// Proto is the version the request arrived with, and the one
	// WriteRequestHead writes.
	Proto Proto
	// Header holds the header fields in arrival order.
	Header Header
	// Body is the framing of the request body as received; WriteRequestHead
	// writes Content-Length or Transfer-Encoding from it, never from Header.
	// A request is never framed UntilClose.
	Body Framing
	// Close is whether the connection ends after this request: on parse, the
	// client's wish (see KeepAlive); on write, it becomes "Connection: close"
	// for HTTP/1.1 and the absence of "Connection: keep-alive" for HTTP/1.0.
	Close bool
	// Limits bound the head ParseRequestHead accepts; the zero value means
	// 64 KiB and 100 fields. Parsing and Reset leave Limits alone.
	Limits Limits

	method, target []byte
	// The parts of target: [authStart, authEnd) is the authority of the
	// absolute and authority forms; [pathStart, pathEnd) the path; a query
	// follows pathEnd if target[pathEnd] is '?'.
	authStart, authEnd, pathStart, pathEnd int
}

// Reset empties the head for reuse, keeping Limits.
func (h *RequestHead) Reset() {
	h.Header.Reset()
	*h = RequestHead{Header: h.Header, Limits: h.Limits}
}

// Method is the request method, as sent (methods are case-sensitive).
func (h *RequestHead) Method() []byte { return h.method }

// Target is the request target, raw, as it will be written.
func (h *RequestHead) Target() []byte { return h.target }

// Path is the target's path, still percent-encoded: "/a/b" of "/a/b?c=d"
// or of "http://host/a/b?c=d", "*" for OPTIONS *, and empty for the
// authority form of CONNECT or an absolute form with no path.
func (h *RequestHead) Path() []byte { return h.target[h.pathStart:h.pathEnd] }

// Query is the target's query without its '?' ("c=d" of "/a?c=d"), raw;
// nil if there is none.
func (h *RequestHead) Query() []byte {
	if h.pathEnd < len(h.target) && h.target[h.pathEnd] == '?' {
		return h.target[h.pathEnd+1:]
	}
	return nil
}

// Authority is the host (and port) the request is for: the target's
// authority in absolute or authority form, otherwise the Host field.
func (h *RequestHead) Authority() []byte {
	if h.authEnd > h.authStart {
		return h.target[h.authStart:h.authEnd]
	}
	return h.Header.Get("Host")
}

// MethodIs reports whether the method is m (exactly: methods are
// case-sensitive).
func (h *RequestHead) MethodIs(m string) bool { return string(h.method) == m }

// Upgrading reports whether the client asks to switch protocols: an
// Upgrade field and "upgrade" among the Connection options (RFC 9110 §7.8).
func (h *RequestHead) Upgrading() bool {
	return h.Header.Has("Upgrade") && h.Header.HasToken("Connection", "upgrade")
}

// ExpectsContinue reports whether the client waits for "100 Continue"
// before sending the body (RFC 9110 §10.1.1).
func (h *RequestHead) ExpectsContinue() bool {
	return h.Proto == HTTP11 && equalFold(h.Header.Get("Expect"), "100-continue")
}

// StripHopByHop removes the fields that concern only the connection the
// request arrived on (RFC 9110 §7.6.1): Connection and every field it
// names, Keep-Alive, Proxy-Connection, Transfer-Encoding (the body is
// re-framed from Body), Trailer, TE unless it offers "trailers" (which
// stays as "TE: trailers"), and Upgrade unless the request is Upgrading,
// in which case Upgrade stays and "Connection: Upgrade" is added. Call
// Upgrading, ExpectsContinue and read Close as needed before or after: the
// first stays true for an upgrade, the others are unaffected.
func (h *RequestHead) StripHopByHop() { h.Header.stripHopByHop(h.Upgrading()) }

// SetTarget replaces the request target with a copy of target, which must
// be a valid origin, absolute, authority or asterisk form for the method.
func (h *RequestHead) SetTarget(target []byte) error {
	start := len(h.Header.arena)
	h.Header.arena = append(h.Header.arena, target...)
	return h.setTarget(h.Header.arena[start:len(h.Header.arena):len(h.Header.arena)])
}

// ReplacePathPrefix rewrites the path if it starts with prefix, replacing
// that prefix with replacement and keeping the rest of the path and the
// query, and reports whether it did. replacement must be a valid path
// prefix (configuration validates it).
func (h *RequestHead) ReplacePathPrefix(prefix, replacement string) bool {
	path := h.Path()
	if len(path) < len(prefix) || string(path[:len(prefix)]) != prefix {
		return false
	}
	a := h.Header.arena
	start := len(a)
	a = append(a, h.target[:h.pathStart]...)
	a = append(a, replacement...)
	a = append(a, path[len(prefix):]...)
	a = append(a, h.target[h.pathEnd:]...)
	h.Header.arena = a
	// Only the path changed, so the target stays valid; reparse offsets.
	_ = h.setTarget(a[start:len(a):len(a)])
	return true
}

// ParseRequestHead reads a request head from r into h, replacing what h
// held. It skips up to four empty lines before the request line (RFC 9112
// §2.2), accepts HTTP/1.1 and HTTP/1.0, and sets Body and Close. It
// returns io.EOF if r ends before the head begins, io.ErrUnexpectedEOF if
// it ends inside it, an *Error from this package for a head it refuses,
// and read errors as they are.
func ParseRequestHead(r *bufio.Reader, h *RequestHead) error {
	h.Reset()
	lr := lineReader{r: r, h: &h.Header, left: h.Limits.headBytes()}
	var line []byte
	for empty := 0; ; empty++ {
		var err error
		if line, err = lr.next(); err != nil {
			return err
		}
		if len(line) > 0 {
			break
		}
		if empty == 4 {
			return ErrRequestLine
		}
	}
	if err := h.parseRequestLine(line); err != nil {
		return err
	}
	if err := lr.fields(h.Limits.headers()); err != nil {
		return err
	}
	hosts := 0
	for i := range h.Header.fields {
		if equalFold(h.Header.fields[i].name, "Host") {
			hosts++
		}
	}
	if hosts > 1 || (hosts == 0 && h.Proto == HTTP11) {
		return ErrHost
	}
	var err error
	if h.Body, err = framingFields(&h.Header, h.Proto); err != nil {
		return err
	}
	h.Close = !KeepAlive(h.Proto, &h.Header)
	return nil
}

// parseRequestLine: method SP request-target SP HTTP-version, with single
// spaces (RFC 9112 §3).
func (h *RequestHead) parseRequestLine(line []byte) error {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return ErrRequestLine
	}
	method, rest := line[:sp:sp], line[sp+1:]
	for _, c := range method {
		if !isTokenChar[c] {
			return ErrRequestLine
		}
	}
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return ErrRequestLine
	}
	target, version := rest[:sp:sp], rest[sp+1:]
	var err error
	if h.Proto, err = parseVersion(version, ErrRequestLine); err != nil {
		return err
	}
	h.method = method
	return h.setTarget(target)
}

// setTarget validates target (visible ASCII only) and finds its parts.
func (h *RequestHead) setTarget(t []byte) error {
	if len(t) == 0 {
		return ErrRequestLine
	}
	for _, c := range t {
		if c <= ' ' || c >= 0x7f {
			return ErrRequestLine
		}
	}
	h.authStart, h.authEnd = 0, 0
	switch {
	case t[0] == '/': // origin form
		h.pathStart = 0
	case string(h.method) == "CONNECT": // authority form
		h.target, h.authStart, h.authEnd, h.pathStart, h.pathEnd = t, 0, len(t), len(t), len(t)
		return nil
	case len(t) == 1 && t[0] == '*': // asterisk form
		h.pathStart = 0
	default: // absolute form: scheme "://" authority path-abempty [ "?" query ]
		i := bytes.Index(t, []byte("://"))
		if i <= 0 {
			return ErrRequestLine
		}
		h.authStart = i + 3
		h.authEnd = h.authStart
		for h.authEnd < len(t) && t[h.authEnd] != '/' && t[h.authEnd] != '?' {
			h.authEnd++
		}
		if h.authEnd == h.authStart {
			return ErrRequestLine
		}
		h.pathStart = h.authEnd
	}
	h.pathEnd = h.pathStart
	for h.pathEnd < len(t) && t[h.pathEnd] != '?' {
		h.pathEnd++
	}
	h.target = t
	return nil
}

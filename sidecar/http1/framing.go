package http1

import (
	"bytes"
	"strconv"
)

// FramingKind says how a message body is delimited (RFC 9112 §6.3).
type FramingKind uint8

const (
	// NoBody: the message has no body. A request without Content-Length
	// or Transfer-Encoding, a response to HEAD, and 1xx, 204 and 304
	// responses; it is the zero value.
	NoBody FramingKind = iota
	// ContentLength: exactly Length bytes.
	ContentLength
	// Chunked: chunked transfer coding, possibly with trailer fields.
	Chunked
	// UntilClose: everything until the sender closes the connection; only
	// responses are framed this way.
	UntilClose
)

// Framing is how a body is delimited: Kind, and for ContentLength its
// Length. The zero value is NoBody.
type Framing struct {
	Kind   FramingKind
	Length int64
}

// For returns the framing a body received as f is sent with to a peer
// speaking proto: a body delimited by close goes to an HTTP/1.1 peer
// chunked, so the connection can stay open; a chunked body goes to an
// HTTP/1.0 peer, which knows no chunked coding, delimited by close, without
// its trailers. Other framings stay as they are.
func (f Framing) For(proto Proto) Framing {
	switch {
	case f.Kind == UntilClose && proto == HTTP11:
		return Framing{Kind: Chunked}
	case f.Kind == Chunked && proto == HTTP10:
		return Framing{Kind: UntilClose}
	}
	return f
}

// framingFields reads Content-Length and Transfer-Encoding and rejects
// what a request smuggler would use: both together, lengths that are not
// one non-negative decimal number agreed on by every field, codings other
// than chunked (which we could not undo and must not pass on as
// hop-by-hop), chunked applied twice or not last, and Transfer-Encoding in
// HTTP/1.0 (RFC 9112 §6.1, §6.3).
func framingFields(h *Header, proto Proto) (f Framing, err error) {
	hasLength, hasTE := false, false
	var length int64
	for i := range h.fields {
		name, value := h.fields[i].name, h.fields[i].value
		switch {
		case equalFold(name, "Content-Length"):
			n := 0
			for e := range listElems(value) {
				l, ok := parseLength(e)
				if !ok || (hasLength && l != length) {
					return f, ErrContentLength
				}
				length, hasLength = l, true
				n++
			}
			if n == 0 {
				return f, ErrContentLength
			}
		case equalFold(name, "Transfer-Encoding"):
			if proto == HTTP10 {
				return f, ErrTransferEncodingHTTP10
			}
			n := 0
			for e := range listElems(value) {
				if !equalFold(e, "chunked") || f.Kind == Chunked {
					return f, ErrTransferEncoding
				}
				f.Kind = Chunked
				n++
			}
			if n == 0 {
				return f, ErrTransferEncoding
			}
			hasTE = true
		}
	}
	switch {
	case hasTE && hasLength:
		return Framing{}, ErrLengthAndChunked
	case hasTE:
		return f, nil
	case hasLength:
		return Framing{Kind: ContentLength, Length: length}, nil
	}
	return Framing{}, nil
}

// parseLength parses 1*DIGIT without sign or overflow.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// KeepAlive reports whether a message of version proto with header h lets
// its connection carry another message: HTTP/1.1 unless Connection says
// close, HTTP/1.0 only if Connection says keep-alive (RFC 9112 §9.3).
func KeepAlive(proto Proto, h *Header) bool {
	if h.HasToken("Connection", "close") {
		return false
	}
	return proto == HTTP11 || h.HasToken("Connection", "keep-alive")
}

var crlf = []byte("\r\n")

// appendHex appends n in lower-case hex, as chunk sizes are written.
func appendHex(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 16) }

// isLineEnd reports whether b is exactly a line ending.
func isLineEnd(b []byte) bool { return bytes.Equal(b, crlf) || (len(b) == 1 && b[0] == '\n') }

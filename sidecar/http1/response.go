package http1

import (
	"bufio"
	"bytes"
)

// ResponseHead is a parsed status line and header section. Parse into the
// same ResponseHead for every response on a connection: its memory is
// reused. The zero value is an empty head ready to parse into.
type ResponseHead struct {
	// Proto is the version the response arrived with, and the one
	// WriteResponseHead writes; a proxy sets it to the version of the
	// request it answers.
	Proto Proto
	// Status is the three-digit status code.
	Status int
	// Header holds the header fields in arrival order.
	Header Header
	// Body is the framing of the response body as received (it depends on
	// the request method, see ParseResponseHead); WriteResponseHead writes
	// Content-Length or Transfer-Encoding from it. A proxy sets it to the
	// framing it sends with (see Framing.For) before writing.
	Body Framing
	// Close is whether the connection ends after this response: on parse,
	// the server's wish (see KeepAlive) or a body framed UntilClose; on
	// write, it becomes "Connection: close" for HTTP/1.1 and the absence of
	// "Connection: keep-alive" for HTTP/1.0.
	Close bool
	// Limits bound the head ParseResponseHead accepts; the zero value
	// means 64 KiB and 100 fields. Parsing and Reset leave Limits alone.
	Limits Limits

	reason []byte
}

// Reset empties the head for reuse, keeping Limits.
func (h *ResponseHead) Reset() {
	h.Header.Reset()
	*h = ResponseHead{Header: h.Header, Limits: h.Limits}
}

// Reason is the reason phrase, possibly empty.
func (h *ResponseHead) Reason() []byte { return h.reason }

// SetStatus sets the status code and reason phrase.
func (h *ResponseHead) SetStatus(status int, reason string) {
	h.Status = status
	start := len(h.Header.arena)
	h.Header.arena = append(h.Header.arena, reason...)
	h.reason = h.Header.arena[start:len(h.Header.arena):len(h.Header.arena)]
}

// Informational reports whether this is a 1xx interim response that a
// final response follows (101 Switching Protocols is not: it is the last
// HTTP on the connection).
func (h *ResponseHead) Informational() bool {
	return h.Status >= 100 && h.Status < 200 && h.Status != 101
}

// Upgrading reports whether the server switches protocols (101); after
// the head, the connection carries the new protocol in both directions.
func (h *ResponseHead) Upgrading() bool { return h.Status == 101 }

// StripHopByHop removes the fields that concern only the connection the
// response arrived on, as RequestHead.StripHopByHop does; a 101 response
// keeps Upgrade and gets "Connection: Upgrade".
func (h *ResponseHead) StripHopByHop() { h.Header.stripHopByHop(h.Upgrading()) }

// ParseResponseHead reads a response head from r into h, replacing what h
// held. method is the method of the request it answers: a response to
// HEAD has no body whatever its fields say, nor has a 2xx response to
// CONNECT (the connection becomes a tunnel), nor 1xx, 204 and 304; a
// response with neither Content-Length nor chunked coding is delimited by
// closing the connection. Errors are as for ParseRequestHead; a proxy
// answers any of them with 502.
func ParseResponseHead(r *bufio.Reader, h *ResponseHead, method []byte) error {
	h.Reset()
	lr := lineReader{r: r, h: &h.Header, left: h.Limits.headBytes()}
	line, err := lr.next()
	if err != nil {
		return err
	}
	if err := h.parseStatusLine(line); err != nil {
		return err
	}
	if err := lr.fields(h.Limits.headers()); err != nil {
		return err
	}
	if h.Body, err = framingFields(&h.Header, h.Proto); err != nil {
		return err
	}
	switch {
	case h.Status < 200 || h.Status == 204 || h.Status == 304 || string(method) == "HEAD":
		h.Body = Framing{}
	case string(method) == "CONNECT" && h.Status < 300:
		h.Body = Framing{}
	case h.Body.Kind == NoBody:
		h.Body = Framing{Kind: UntilClose}
	}
	h.Close = !KeepAlive(h.Proto, &h.Header) || h.Body.Kind == UntilClose
	return nil
}

// parseStatusLine: HTTP-version SP 3DIGIT SP reason-phrase (RFC 9112 §4);
// a missing space after the code, which some servers omit when the reason
// is empty, is accepted.
func (h *ResponseHead) parseStatusLine(line []byte) error {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return ErrStatusLine
	}
	var err error
	if h.Proto, err = parseVersion(line[:sp], ErrStatusLine); err != nil {
		return err
	}
	rest := line[sp+1:]
	if len(rest) < 3 || !isDigit(rest[0]) || !isDigit(rest[1]) || !isDigit(rest[2]) || rest[0] == '0' {
		return ErrStatusLine
	}
	h.Status = int(rest[0]-'0')*100 + int(rest[1]-'0')*10 + int(rest[2]-'0')
	rest = rest[3:]
	if len(rest) > 0 {
		if rest[0] != ' ' {
			return ErrStatusLine
		}
		rest = rest[1:]
	}
	for _, c := range rest {
		if !isValueChar[c] {
			return ErrStatusLine
		}
	}
	h.reason = rest[:len(rest):len(rest)]
	return nil
}

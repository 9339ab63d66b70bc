package httpproxy

// The HTTP/2 server's HEADERS: a new stream's request (onHeaders,
// newRequest) or a stream's trailers; the connection is server2.go.

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
)

func (c *h2conn) onHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	c.mu.Lock()
	if s := c.streams[id]; s != nil {
		// Trailers: they end the stream.
		defer c.mu.Unlock()
		if s.reset {
			if !c.closedByUsLocked(s, id) {
				c.writeResetLocked(id, http2.ErrCodeStreamClosed)
			}
			return nil
		}
		if s.bodyEnded {
			c.resetLocked(id, http2.ErrCodeStreamClosed)
			return nil
		}
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 || (s.declared >= 0 && s.received != s.declared) {
			c.resetLocked(id, http2.ErrCodeProtocol)
			return nil
		}
		if s.trailer != nil {
			for _, hf := range f.RegularFields() {
				s.trailer.Add(http.CanonicalHeaderKey(hf.Name), hf.Value)
			}
		}
		s.bodyEnded = true
		s.cond.Broadcast()
		c.maybeForgetLocked(s)
		return nil
	}
	if id%2 == 1 && id <= c.maxID && c.closedByUsLocked(nil, id) {
		// Trailers of a stream reset and forgotten, sent before the
		// client saw the RST_STREAM.
		c.mu.Unlock()
		return nil
	}
	if id%2 == 0 || id <= c.maxID {
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.maxID = id
	if c.goAway || c.done {
		c.mu.Unlock()
		return nil
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		// RFC 9113 5.3.1: a stream cannot depend on itself.
		c.resetLocked(id, http2.ErrCodeProtocol)
		c.mu.Unlock()
		return nil
	}
	if len(c.streams) >= h2MaxStreams {
		c.resetLocked(id, http2.ErrCodeRefusedStream)
		c.mu.Unlock()
		return nil
	}
	if f.Truncated {
		// Larger than MAX_HEADER_LIST_SIZE: 431, as net/http.
		c.writeHeadersLocked(id, 431, nil, true)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()

	var req http.Request
	err := c.newRequest(f, &req)
	if err != nil {
		c.mu.Lock()
		c.resetLocked(id, http2.ErrCodeProtocol)
		c.mu.Unlock()
		return nil
	}
	s := &h2stream{c: c, id: id}
	s.cond.L = &c.mu
	s.ctx.parent = c.ctx
	c.mu.Lock()
	s.recvWindow = h2StreamWindow
	s.sendWindow = c.peerWindow
	s.bodyEnded = f.StreamEnded()
	s.declared = -1
	if !s.bodyEnded {
		s.declared = req.ContentLength
		s.trailer = req.Trailer
		req.Body = &h2body{s: s}
	}
	c.streams[id] = s
	first := len(c.streams) == 1
	c.handlers.Add(1)
	c.mu.Unlock()
	if first {
		c.setIdle(false)
	}
	startStream(s, req.WithContext(&s.ctx))
	return nil
}

// newRequest fills r with the net/http request of a HEADERS frame (r is
// then given its context with WithContext, which copies it).
func (c *h2conn) newRequest(f *http2.MetaHeadersFrame, r *http.Request) error {
	var method, path, authority, scheme string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":path":
			path = hf.Value
		case ":authority":
			authority = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":protocol":
		default:
			return errors.New("pseudo-header")
		}
	}
	fields := f.RegularFields()
	hdr := make(http.Header, len(fields))
	vals := make([]string, len(fields)) // one array for the one-value slices
	var cookies []string
	for i, hf := range fields {
		switch hf.Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return errors.New("connection-specific header")
		case "te":
			if hf.Value != "trailers" {
				return errors.New("te")
			}
		case "cookie":
			cookies = append(cookies, hf.Value)
			continue
		case "host":
			if authority == "" {
				authority = hf.Value
			}
			continue
		}
		k := canonicalLower(hf.Name)
		if vs, ok := hdr[k]; ok {
			hdr[k] = append(vs, hf.Value)
			continue
		}
		vals[i] = hf.Value
		hdr[k] = vals[i : i+1 : i+1]
	}
	if len(cookies) > 0 {
		hdr["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	*r = http.Request{
		Method:     method,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     hdr,
		Host:       authority,
		RemoteAddr: c.remote,
		RequestURI: path,
		Body:       http.NoBody,
	}
	if method == "" {
		return errors.New(":method")
	}
	if method == "CONNECT" && path == "" {
		// RFC 9113 8.5: :authority only.
		if scheme != "" || authority == "" {
			return errors.New("CONNECT pseudo-headers")
		}
		r.URL = &url.URL{Host: authority}
		r.RequestURI = authority
	} else {
		// RFC 9113 8.3.1: :method, :scheme and :path are required.
		if scheme == "" {
			return errors.New(":scheme")
		}
		if path == "" || (path[0] != '/' && !(path == "*" && method == "OPTIONS")) {
			return errors.New(":path")
		}
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return err
		}
		r.URL = u
	}
	if !f.StreamEnded() {
		r.ContentLength = -1
		if cl := hdr["Content-Length"]; len(cl) == 1 {
			n, err := strconv.ParseInt(cl[0], 10, 64)
			if err != nil || n < 0 {
				return errors.New("content-length")
			}
			r.ContentLength = n
		}
		for _, v := range hdr["Trailer"] {
			for _, k := range strings.Split(v, ",") {
				if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
					if r.Trailer == nil {
						r.Trailer = make(http.Header)
					}
					r.Trailer[k] = nil
				}
			}
		}
	}
	return nil
}

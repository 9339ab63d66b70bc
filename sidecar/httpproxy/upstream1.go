package httpproxy

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"

	"github.com/skeinmesh/skein/sidecar/http1"
)

// The HTTP/2 to HTTP/1.1 exchange's codec: stream2.forward1 writes the
// request and reads the response head with these rather than with
// http.Request.Write and http.ReadResponse, whose textproto parsing and
// allocations were a fifth of the proxy's CPU under h2load. The response
// head is parsed with sidecar/http1 (its limits and request-smuggling
// checks included) and handed on as an *http.Response.

// writeRequest1 writes out as an HTTP/1.1 request, as out.Write does:
// Host from out.Host, no User-Agent unless out has one (forward1 keeps
// net/http from adding its own), Content-Length: 0 for a bodiless POST,
// PUT or PATCH. A request with a body goes through out.Write (chunked
// coding, trailers).
func writeRequest1(w *bufio.Writer, out *http.Request) error {
	if out.Body != nil || out.Close || out.TransferEncoding != nil || len(out.Trailer) > 0 {
		return out.Write(w)
	}
	host := out.Host
	if host == "" {
		host = out.URL.Host
	}
	w.WriteString(out.Method)
	w.WriteByte(' ')
	if out.URL.Opaque != "" {
		w.WriteString(out.URL.Opaque)
	} else {
		p := out.URL.EscapedPath()
		if p == "" {
			p = "/"
		}
		w.WriteString(p)
	}
	if out.URL.ForceQuery || out.URL.RawQuery != "" {
		w.WriteByte('?')
		w.WriteString(out.URL.RawQuery)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vs := range out.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			writeFieldValue(w, v)
			w.WriteString("\r\n")
		}
	}
	switch out.Method {
	case "POST", "PUT", "PATCH":
		w.WriteString("Content-Length: 0\r\n")
	}
	_, err := w.WriteString("\r\n")
	return err
}

// writeFieldValue writes v with line breaks as spaces and the surrounding
// blanks trimmed, as http.Header.Write.
func writeFieldValue(w *bufio.Writer, v string) {
	v = textproto.TrimString(v)
	for {
		i := strings.IndexAny(v, "\r\n")
		if i < 0 {
			w.WriteString(v)
			return
		}
		w.WriteString(v[:i])
		w.WriteByte(' ')
		v = v[i+1:]
	}
}

// heads1 pools the parsed response heads.
var heads1 = sync.Pool{New: func() any { return new(http1.ResponseHead) }}

// readResponse1 reads the response to req from r, skipping interim (1xx)
// responses. The body reads from r and Close drains it, so that the
// connection can be reused.
func readResponse1(r *bufio.Reader, req *http.Request) (*http.Response, error) {
	head := heads1.Get().(*http1.ResponseHead)
	defer func() {
		head.Reset()
		heads1.Put(head)
	}()
	for {
		if err := http1.ParseResponseHead(r, head, []byte(req.Method)); err != nil {
			return nil, err // *http1.Error: 502 upstream_protocol_error
		}
		if !head.Informational() && !head.Upgrading() {
			break
		}
		if head.Upgrading() {
			return nil, http1.ErrStatusLine // no Upgrade over HTTP/2 (extended CONNECT) yet
		}
	}
	rb := new(response1)
	resp := &rb.resp
	*resp = http.Response{
		Status:     statusLine(head),
		StatusCode: head.Status,
		Proto:      head.Proto.String(),
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, head.Header.Len()),
		Close:      head.Close,
		Request:    req,
	}
	if head.Proto == http1.HTTP10 {
		resp.ProtoMinor = 0
	}
	// The values are substrings of one string, and the one-value slices
	// parts of one array: two allocations for the values however many.
	n, size := head.Header.Len(), 0
	for i := range n {
		_, value := head.Header.At(i)
		size += len(value)
	}
	var vb strings.Builder
	vb.Grow(size)
	for i := range n {
		_, value := head.Header.At(i)
		vb.Write(value)
	}
	all, off := vb.String(), 0
	vals := make([]string, n)
	for i := range n {
		name, value := head.Header.At(i)
		v := all[off : off+len(value)]
		off += len(value)
		k, ok := commonCanonical[string(name)]
		if !ok {
			k = http.CanonicalHeaderKey(string(name))
		}
		if k == "Transfer-Encoding" {
			continue
		}
		if vs, ok := resp.Header[k]; ok {
			resp.Header[k] = append(vs, v)
			continue
		}
		vals[i] = v
		resp.Header[k] = vals[i : i+1 : i+1]
	}
	switch head.Body.Kind {
	case http1.NoBody:
		resp.Body = http.NoBody
	case http1.ContentLength:
		resp.ContentLength = head.Body.Length
		rb.body = body1{r: r, n: head.Body.Length}
		resp.Body = &rb.body
		if head.Body.Length == 0 {
			resp.Body = http.NoBody
		}
	case http1.Chunked:
		resp.ContentLength = -1
		resp.TransferEncoding = []string{"chunked"}
		for _, v := range resp.Header["Trailer"] {
			for _, k := range strings.Split(v, ",") {
				if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
					if resp.Trailer == nil {
						resp.Trailer = make(http.Header)
					}
					resp.Trailer[k] = nil
				}
			}
		}
		delete(resp.Header, "Trailer")
		rb.body = body1{r: r, n: -1, chunked: httputil.NewChunkedReader(r), resp: resp}
		resp.Body = &rb.body
	default: // until close
		resp.ContentLength = -1
		resp.Close = true
		rb.body = body1{r: r, n: -1}
		resp.Body = &rb.body
	}
	return resp, nil
}

// response1 is a response and its body in one allocation.
type response1 struct {
	resp http.Response
	body body1
}

// statusLine is http.Response.Status: "200 OK".
func statusLine(head *http1.ResponseHead) string {
	if head.Status == 200 && string(head.Reason()) == "OK" {
		return "200 OK"
	}
	return strconv.Itoa(head.Status) + " " + string(head.Reason())
}

// body1 is a response body on an HTTP/1.1 connection: n bytes
// (Content-Length), chunked (then the trailers), or until the connection
// closes (n < 0, chunked nil).
type body1 struct {
	r       *bufio.Reader
	n       int64
	chunked io.Reader
	resp    *http.Response // its Trailer gets the trailers
	err     error          // sticky: io.EOF at the end
}

func (b *body1) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	var n int
	var err error
	switch {
	case b.chunked != nil:
		n, err = b.chunked.Read(p)
		if err == io.EOF {
			err = b.readTrailer()
		}
	case b.n >= 0:
		if b.n == 0 {
			b.err = io.EOF
			return 0, io.EOF
		}
		n, err = b.r.Read(p[:min(int64(len(p)), b.n)])
		b.n -= int64(n)
		if b.n == 0 && err == nil {
			err = io.EOF
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	default:
		n, err = b.r.Read(p)
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// readTrailer reads the trailer section after the last chunk into the
// response's Trailer, as net/http does.
func (b *body1) readTrailer() error {
	tp := textproto.NewReader(b.r)
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	for k, vs := range h {
		if b.resp.Trailer == nil {
			b.resp.Trailer = make(http.Header, len(h))
		}
		b.resp.Trailer[k] = vs
	}
	return io.EOF
}

// Close reads the rest of the body, so that the connection can carry the
// next request; an error says it cannot.
func (b *body1) Close() error {
	if b.err == nil && b.chunked == nil && b.n < 0 {
		b.err = errors.New("body closed before its end")
		return b.err
	}
	if b.err == nil && b.chunked == nil {
		n, err := b.r.Discard(int(b.n))
		b.n -= int64(n)
		b.err = err
		if err == nil {
			b.err = io.EOF
		} else if err == io.EOF {
			b.err = io.ErrUnexpectedEOF
		}
	}
	if b.err == nil {
		io.Copy(io.Discard, b)
	}
	if b.err != io.EOF {
		return b.err
	}
	return nil
}

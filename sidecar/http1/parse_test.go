package http1

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func parseRequest(t testing.TB, raw string) (*RequestHead, error) {
	t.Helper()
	var h RequestHead
	err := ParseRequestHead(bufio.NewReaderSize(strings.NewReader(raw), 16), &h)
	return &h, err
}

func TestParseRequestHeadValid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		raw   string
		check func(t *testing.T, h *RequestHead)
	}{
		{
			name: "GET with query",
			raw:  "GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com\r\nX-Trace:  abc \t\r\n\r\n",
			check: func(t *testing.T, h *RequestHead) {
				eq(t, "method", h.Method(), "GET")
				eq(t, "target", h.Target(), "/a/b?c=d&e")
				eq(t, "path", h.Path(), "/a/b")
				eq(t, "query", h.Query(), "c=d&e")
				eq(t, "authority", h.Authority(), "example.com")
				eq(t, "trimmed value", h.Header.Get("x-trace"), "abc")
				if h.Proto != HTTP11 || h.Close || h.Body != (Framing{}) {
					t.Errorf("proto %v close %v body %+v", h.Proto, h.Close, h.Body)
				}
			},
		},
		{
			name: "bare LF line endings and leading empty lines",
			raw:  "\r\n\nGET / HTTP/1.1\nHost: h\n\n",
			check: func(t *testing.T, h *RequestHead) {
				eq(t, "path", h.Path(), "/")
				if h.Query() != nil {
					t.Errorf("query %q, want nil", h.Query())
				}
			},
		},
		{
			name: "absolute form",
			raw:  "GET http://backend:8080/x/y?q HTTP/1.1\r\nHost: other\r\n\r\n",
			check: func(t *testing.T, h *RequestHead) {
				eq(t, "authority", h.Authority(), "backend:8080")
				eq(t, "path", h.Path(), "/x/y")
				eq(t, "query", h.Query(), "q")
			},
		},
		{
			name: "CONNECT authority form",
			raw:  "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n",
			check: func(t *testing.T, h *RequestHead) {
				eq(t, "authority", h.Authority(), "db:5432")
				eq(t, "path", h.Path(), "")
			},
		},
		{
			name:  "OPTIONS asterisk",
			raw:   "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
			check: func(t *testing.T, h *RequestHead) { eq(t, "path", h.Path(), "*") },
		},
		{
			name: "content length, repeated identically",
			raw:  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\ncontent-length: 12, 12\r\n\r\n",
			check: func(t *testing.T, h *RequestHead) {
				if h.Body != (Framing{Kind: ContentLength, Length: 12}) {
					t.Errorf("body %+v", h.Body)
				}
			},
		},
		{
			name: "chunked, any case",
			raw:  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
			check: func(t *testing.T, h *RequestHead) {
				if h.Body.Kind != Chunked {
					t.Errorf("body %+v", h.Body)
				}
			},
		},
		{
			name: "HTTP/1.0 closes by default",
			raw:  "GET / HTTP/1.0\r\n\r\n",
			check: func(t *testing.T, h *RequestHead) {
				if h.Proto != HTTP10 || !h.Close {
					t.Errorf("proto %v close %v", h.Proto, h.Close)
				}
			},
		},
		{
			name: "HTTP/1.0 keep-alive",
			raw:  "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			check: func(t *testing.T, h *RequestHead) {
				if h.Close {
					t.Error("HTTP/1.0 with Connection: keep-alive should stay open")
				}
			},
		},
		{
			name: "HTTP/1.1 Connection: close among other options",
			raw:  "GET / HTTP/1.1\r\nHost: h\r\nConnection: x-foo, Close\r\n\r\n",
			check: func(t *testing.T, h *RequestHead) {
				if !h.Close {
					t.Error("Connection: close not seen")
				}
			},
		},
		{
			name: "empty value and obs-text",
			raw:  "GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Latin: caf\xe9\r\n\r\n",
			check: func(t *testing.T, h *RequestHead) {
				if v, ok := h.Header.Lookup("X-Empty"); !ok || len(v) != 0 {
					t.Errorf("X-Empty = %q, %v", v, ok)
				}
				eq(t, "obs-text", h.Header.Get("X-Latin"), "caf\xe9")
			},
		},
		{
			name: "expect continue and upgrade",
			raw:  "GET /ws HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
			check: func(t *testing.T, h *RequestHead) {
				if !h.ExpectsContinue() || !h.Upgrading() {
					t.Errorf("expects continue %v, upgrading %v", h.ExpectsContinue(), h.Upgrading())
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseRequest(t, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, h)
		})
	}
}

func TestParseRequestHeadRejects(t *testing.T) {
	many := "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: b\r\n", 100) + "\r\n"
	for _, tc := range []struct {
		name   string
		raw    string
		want   error
		status int // the response a server sends
	}{
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n c\r\n\r\n", ErrObsFold, 400},
		{"whitespace before first field", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", ErrObsFold, 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", ErrSpaceBeforeColon, 400},
		{"tab before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", ErrSpaceBeforeColon, 400},
		{"no colon", "GET / HTTP/1.1\r\nHost h\r\n\r\n", ErrHeaderName, 400},
		{"empty name", "GET / HTTP/1.1\r\n: h\r\n\r\n", ErrHeaderName, 400},
		{"separator in name", "GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", ErrHeaderName, 400},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: h\rX-Evil: 1\r\n\r\n", ErrHeaderValue, 400},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: h\x00\r\n\r\n", ErrHeaderValue, 400},
		{"DEL in value", "GET / HTTP/1.1\r\nHost: h\x7f\r\n\r\n", ErrHeaderValue, 400},
		{"head too large", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", ErrHeadTooLarge, 431},
		{"too many fields", many, ErrTooManyHeaders, 431},
		{"CL and TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", ErrLengthAndChunked, 400},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", ErrLengthAndChunked, 400},
		{"differing CL fields", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", ErrContentLength, 400},
		{"differing CL list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", ErrContentLength, 400},
		{"negative CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", ErrContentLength, 400},
		{"signed CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", ErrContentLength, 400},
		{"hex CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", ErrContentLength, 400},
		{"empty CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", ErrContentLength, 400},
		{"overflowing CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", ErrContentLength, 400},
		{"unknown coding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", ErrTransferEncoding, 501},
		{"chunked not last", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", ErrTransferEncoding, 501},
		{"chunked twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTransferEncoding, 501},
		{"chunked with junk", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", ErrTransferEncoding, 501},
		{"empty TE", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n", ErrTransferEncoding, 501},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTransferEncodingHTTP10, 400},
		{"no Host in 1.1", "GET / HTTP/1.1\r\n\r\n", ErrHost, 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ErrHost, 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\n", ErrVersion, 505},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", ErrVersion, 505},
		{"lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", ErrRequestLine, 400},
		{"double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", ErrRequestLine, 400},
		{"no version", "GET /\r\n\r\n", ErrRequestLine, 400},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", ErrRequestLine, 400},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", ErrRequestLine, 400},
		{"bad method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", ErrRequestLine, 400},
		{"too many empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", ErrRequestLine, 400},
		{"ends inside head", "GET / HTTP/1.1\r\nHost: h\r\n", io.ErrUnexpectedEOF, 0},
		{"ends inside request line", "GET / HT", io.ErrUnexpectedEOF, 0},
		{"nothing", "", io.EOF, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRequest(t, tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var e *Error
			if errors.As(err, &e) != (tc.status != 0) || (e != nil && e.Status != tc.status) {
				t.Errorf("error %v: want status %d", err, tc.status)
			}
		})
	}
}

func TestParseRequestHeadLimits(t *testing.T) {
	raw := "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"
	var h RequestHead
	h.Limits = Limits{MaxHeaders: 2}
	if err := ParseRequestHead(bufio.NewReader(strings.NewReader(raw)), &h); !errors.Is(err, ErrTooManyHeaders) {
		t.Errorf("3 fields, limit 2: %v", err)
	}
	h.Limits = Limits{MaxHeadBytes: len(raw) - 1}
	if err := ParseRequestHead(bufio.NewReader(strings.NewReader(raw)), &h); !errors.Is(err, ErrHeadTooLarge) {
		t.Errorf("head one byte over: %v", err)
	}
	h.Limits = Limits{MaxHeadBytes: len(raw), MaxHeaders: 3}
	if err := ParseRequestHead(bufio.NewReader(strings.NewReader(raw)), &h); err != nil {
		t.Errorf("head at the limits: %v", err)
	}
}

// Pipelined requests parse one after the other from the same reader, and a
// head's slices stay put while the next one is read into another head.
func TestParseRequestHeadPipelined(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\n"))
	var h1, h2 RequestHead
	if err := ParseRequestHead(r, &h1); err != nil {
		t.Fatal(err)
	}
	if err := ParseRequestHead(r, &h2); err != nil {
		t.Fatal(err)
	}
	eq(t, "first path", h1.Path(), "/1")
	eq(t, "first host", h1.Authority(), "a")
	eq(t, "second path", h2.Path(), "/2")
	if err := ParseRequestHead(r, &h1); err != io.EOF {
		t.Errorf("after the last request: %v, want io.EOF", err)
	}
}

func TestParseResponseHead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		raw    string
		method string
		want   Framing
		close  bool
		status int
		reason string
		err    error
	}{
		{name: "length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", method: "GET", want: Framing{ContentLength, 3}, status: 200, reason: "OK"},
		{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", method: "GET", want: Framing{Kind: Chunked}, status: 200, reason: "OK"},
		{name: "until close", raw: "HTTP/1.1 200 OK\r\n\r\n", method: "GET", want: Framing{Kind: UntilClose}, close: true, status: 200, reason: "OK"},
		{name: "HEAD keeps no body", raw: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", method: "HEAD", status: 200, reason: "OK"},
		{name: "204", raw: "HTTP/1.1 204 No Content\r\n\r\n", method: "DELETE", status: 204, reason: "No Content"},
		{name: "304", raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", method: "GET", status: 304, reason: "Not Modified"},
		{name: "100 continue", raw: "HTTP/1.1 100 Continue\r\n\r\n", method: "POST", status: 100, reason: "Continue"},
		{name: "101", raw: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", method: "GET", status: 101, reason: "Switching Protocols"},
		{name: "CONNECT 200 is a tunnel", raw: "HTTP/1.1 200 Connection established\r\n\r\n", method: "CONNECT", status: 200, reason: "Connection established"},
		{name: "no reason", raw: "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", method: "GET", want: Framing{ContentLength, 0}, status: 404},
		{name: "empty reason", raw: "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", method: "GET", want: Framing{ContentLength, 0}, status: 404},
		{name: "1.0 closes", raw: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", method: "GET", want: Framing{ContentLength, 0}, close: true, status: 200, reason: "OK"},
		{name: "1.0 keep-alive", raw: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", method: "GET", want: Framing{ContentLength, 0}, status: 200, reason: "OK"},
		{name: "CL and TE", raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", method: "GET", err: ErrLengthAndChunked},
		{name: "gzip coding", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", method: "GET", err: ErrTransferEncoding},
		{name: "two-digit status", raw: "HTTP/1.1 20 OK\r\n\r\n", method: "GET", err: ErrStatusLine},
		{name: "status 099", raw: "HTTP/1.1 099 X\r\n\r\n", method: "GET", err: ErrStatusLine},
		{name: "four-digit status", raw: "HTTP/1.1 2000 OK\r\n\r\n", method: "GET", err: ErrStatusLine},
		{name: "HTTP/2", raw: "HTTP/2.0 200 OK\r\n\r\n", method: "GET", err: ErrVersion},
		{name: "garbage", raw: "SSH-2.0-OpenSSH\r\n\r\n", method: "GET", err: ErrStatusLine},
		{name: "obs-fold", raw: "HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n", method: "GET", err: ErrObsFold},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h ResponseHead
			err := ParseResponseHead(bufio.NewReader(strings.NewReader(tc.raw)), &h, []byte(tc.method))
			if !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if h.Status != tc.status || string(h.Reason()) != tc.reason || h.Body != tc.want || h.Close != tc.close {
				t.Errorf("got %d %q body %+v close %v, want %d %q body %+v close %v",
					h.Status, h.Reason(), h.Body, h.Close, tc.status, tc.reason, tc.want, tc.close)
			}
		})
	}
}

func eq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if string(got) != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

package http1

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func fieldsOf(h *Header) string {
	var b strings.Builder
	for name, value := range h.All() {
		b.WriteString(string(name) + ": " + string(value) + "\n")
	}
	return b.String()
}

func TestHeaderEdits(t *testing.T) {
	var h Header
	h.Add("Accept", "a")
	h.Add("X-Id", "1")
	h.Add("accept", "b")
	if got := string(h.Get("ACCEPT")); got != "a" {
		t.Errorf("Get = %q, want the first value", got)
	}
	h.Set("Accept", "c")
	if got, want := fieldsOf(&h), "Accept: c\nX-Id: 1\n"; got != want {
		t.Errorf("after Set:\n%s\nwant\n%s", got, want)
	}
	h.Set("X-New", "n")
	h.Del("x-id")
	h.AddBytes([]byte("X-Copy"), h.Get("accept"))
	if got, want := fieldsOf(&h), "Accept: c\nX-New: n\nX-Copy: c\n"; got != want {
		t.Errorf("after Set, Del, AddBytes:\n%s\nwant\n%s", got, want)
	}
	if h.Get("missing") != nil || h.Has("missing") {
		t.Error("a missing field is found")
	}
	h.Reset()
	if h.Len() != 0 {
		t.Errorf("%d fields after Reset", h.Len())
	}
}

func TestStripHopByHop(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string // fields after the request line
		want string // fields left, in order
	}{
		{
			name: "fixed list and fields named in Connection",
			in: "Host: h\r\nConnection: keep-alive, X-Hop, x-other\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
				"X-Hop: 1\r\nX-Other: 2\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-End: 3\r\nConnection: X-Second\r\nX-Second: 4\r\n",
			want: "Host: h\nX-End: 3\n",
		},
		{
			name: "TE keeps trailers only",
			in:   "Host: h\r\nTE: gzip, trailers;q=1\r\n",
			want: "Host: h\n",
		},
		{
			name: "TE: trailers",
			in:   "Host: h\r\nTE: deflate, Trailers\r\n",
			want: "Host: h\nTE: trailers\n",
		},
		{
			name: "upgrade keeps Upgrade",
			in:   "Host: h\r\nConnection: Upgrade, X-Hop\r\nUpgrade: websocket\r\nX-Hop: 1\r\nSec-WebSocket-Key: k\r\n",
			want: "Host: h\nUpgrade: websocket\nSec-WebSocket-Key: k\nConnection: Upgrade\n",
		},
		{
			name: "Upgrade without the Connection option is not an upgrade",
			in:   "Host: h\r\nUpgrade: websocket\r\n",
			want: "Host: h\n",
		},
		{
			name: "end-to-end fields stay",
			in:   "Host: h\r\nContent-Type: text/plain\r\nCookie: a=b\r\n",
			want: "Host: h\nContent-Type: text/plain\nCookie: a=b\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseRequest(t, "GET / HTTP/1.1\r\n"+tc.in+"\r\n")
			if err != nil {
				t.Fatal(err)
			}
			h.StripHopByHop()
			if got := fieldsOf(&h.Header); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestResponseStripHopByHopKeepsUpgradeOn101(t *testing.T) {
	var h ResponseHead
	raw := "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\nKeep-Alive: 1\r\n\r\n"
	if err := ParseResponseHead(bufio.NewReader(strings.NewReader(raw)), &h, []byte("GET")); err != nil {
		t.Fatal(err)
	}
	h.StripHopByHop()
	if got, want := fieldsOf(&h.Header), "Upgrade: websocket\nConnection: Upgrade\n"; got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestReplacePathPrefix(t *testing.T) {
	for _, tc := range []struct {
		name, target, prefix, repl string
		ok                         bool
		want, path, query          string
	}{
		{"origin form", "/api/v1/users?id=7", "/api/v1", "/v2", true, "/v2/users?id=7", "/v2/users", "id=7"},
		{"to root", "/api/x", "/api", "", true, "/x", "/x", ""},
		{"absolute form", "http://h:80/api/x?q", "/api", "/b", true, "http://h:80/b/x?q", "/b/x", "q"},
		{"no match", "/other", "/api", "/b", false, "/other", "/other", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseRequest(t, "GET "+tc.target+" HTTP/1.1\r\nHost: h\r\n\r\n")
			if err != nil {
				t.Fatal(err)
			}
			if ok := h.ReplacePathPrefix(tc.prefix, tc.repl); ok != tc.ok {
				t.Errorf("replaced = %v", ok)
			}
			eq(t, "target", h.Target(), tc.want)
			eq(t, "path", h.Path(), tc.path)
			eq(t, "query", h.Query(), tc.query)
		})
	}
}

func TestWriteHeads(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string // request as received
		edit func(h *RequestHead)
		want string // request as written
	}{
		{
			name: "chunked is re-framed, hop-by-hop gone",
			raw:  "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: x-a\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
			edit: func(h *RequestHead) { h.StripHopByHop(); h.Header.Set("X-B", "3") },
			want: "POST /p HTTP/1.1\r\nHost: h\r\nX-B: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		},
		{
			name: "length written from framing, not copied",
			raw:  "PUT / HTTP/1.1\r\nContent-Length: 0012\r\nHost: h\r\n\r\n",
			edit: func(h *RequestHead) { h.StripHopByHop() },
			want: "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n",
		},
		{
			name: "close on 1.1",
			raw:  "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			edit: func(h *RequestHead) { h.StripHopByHop() },
			want: "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		},
		{
			name: "keep-alive on 1.0",
			raw:  "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			edit: func(h *RequestHead) { h.StripHopByHop() },
			want: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseRequest(t, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(h)
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			if err := WriteRequestHead(w, h); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			if out.String() != tc.want {
				t.Errorf("wrote\n%q\nwant\n%q", out.String(), tc.want)
			}
		})
	}
}

func TestWriteResponseHead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		raw   string
		proto Proto // of the request answered
		want  string
	}{
		{
			name:  "until close becomes chunked for 1.1",
			raw:   "HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\n",
			proto: HTTP11,
			want:  "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		},
		{
			name:  "chunked becomes until close for 1.0",
			raw:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			proto: HTTP10,
			want:  "HTTP/1.0 200 OK\r\n\r\n",
		},
		{
			name:  "length to a 1.0 keep-alive client",
			raw:   "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\n",
			proto: HTTP10,
			want:  "HTTP/1.0 404 Not Found\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n",
		},
		{
			name:  "304 keeps its Content-Length",
			raw:   "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\n",
			proto: HTTP11,
			want:  "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h ResponseHead
			if err := ParseResponseHead(bufio.NewReader(strings.NewReader(tc.raw)), &h, []byte("GET")); err != nil {
				t.Fatal(err)
			}
			h.StripHopByHop()
			h.Body = h.Body.For(tc.proto)
			h.Proto = tc.proto
			h.Close = false
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			if err := WriteResponseHead(w, &h); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			if out.String() != tc.want {
				t.Errorf("wrote\n%q\nwant\n%q", out.String(), tc.want)
			}
		})
	}
}

// TestHopByHopName: the length-first lookup stripHopByHop uses knows every
// hop-by-hop field in any case, and no field that merely shares a length
// or a first letter with one.
func TestHopByHopName(t *testing.T) {
	for _, name := range hopByHop {
		for _, v := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if got := hopByHopName([]byte(v)); got != name {
				t.Errorf("hopByHopName(%q) = %q, want %q", v, got, name)
			}
		}
	}
	for _, v := range []string{"Host", "TF", "Trailers", "Upgrad", "Uparade", "Keep-Alivx", "Connectiom",
		"Content-Length", "Proxy-Connectiom", "Transfer-Encodinf", "Accept-Encoding", ""} {
		if got := hopByHopName([]byte(v)); got != "" {
			t.Errorf("hopByHopName(%q) = %q, want none", v, got)
		}
	}
}

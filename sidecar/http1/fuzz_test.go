package http1

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParseRequestHead: whatever the input, the parser returns a head or
// an error without panicking, a head it accepts is written back as a head
// it accepts again with the same meaning, and the written head never
// carries a byte a field value may not hold.
func FuzzParseRequestHead(f *testing.F) {
	for _, seed := range []string{
		typicalRequest,
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET http://a:1/p?q HTTP/1.1\r\nHost: a\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, x\r\nUpgrade: ws\r\nX: 1\r\nTE: trailers\r\n\r\n",
		"\r\nGET / HTTP/1.1\nHost: h\n\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var h RequestHead
		h.Limits = Limits{MaxHeadBytes: 4096, MaxHeaders: 20}
		err := ParseRequestHead(bufio.NewReaderSize(strings.NewReader(raw), 16), &h)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && (e.Status < 400 || e.Status > 505) {
				t.Fatalf("status %d for %v", e.Status, err)
			}
			return
		}
		if h.Header.Len() > 20 {
			t.Fatalf("%d fields past the limit", h.Header.Len())
		}
		h.StripHopByHop()
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := WriteRequestHead(w, &h); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		head := out.Bytes()
		if i := bytes.Index(head, []byte("\r\n\r\n")); i != len(head)-4 {
			t.Fatalf("written head ends at %d of %d: %q", i, len(head), head)
		}
		if bytes.ContainsAny(head[:len(head)-4], "\x00\x7f") || bytes.Count(head, []byte("\r")) != bytes.Count(head, []byte("\n")) {
			t.Fatalf("written head carries control bytes: %q", head)
		}
		var again RequestHead
		if err := ParseRequestHead(bufio.NewReader(bytes.NewReader(head)), &again); err != nil {
			t.Fatalf("written head %q does not parse: %v", head, err)
		}
		if !bytes.Equal(again.Method(), h.Method()) || !bytes.Equal(again.Target(), h.Target()) ||
			again.Proto != h.Proto || again.Body != h.Body || again.Close != h.Close ||
			!bytes.Equal(again.Path(), h.Path()) || !bytes.Equal(again.Query(), h.Query()) ||
			!bytes.Equal(again.Authority(), h.Authority()) {
			t.Fatalf("meaning changed:\n%q\nbecame\n%q", raw, head)
		}
	})
}

// FuzzCopyBodyChunked: a chunked body CopyBody accepts comes out as a
// chunked body that decodes to the same bytes, and the byte count it
// reports is the decoded length.
func FuzzCopyBodyChunked(f *testing.F) {
	for _, seed := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"3\nabc\n0\n\n",
		"3\r\nabcd\r\n0\r\n\r\n",
		"fffffffffffffffff\r\n",
	} {
		f.Add(seed)
	}
	chunked := Framing{Kind: Chunked}
	f.Fuzz(func(t *testing.T, raw string) {
		var once, twice, plain bytes.Buffer
		n, err := CopyBody(bufio.NewWriter(&once), bufio.NewReaderSize(strings.NewReader(raw), 16), chunked, chunked)
		if err != nil {
			return
		}
		m, err := CopyBody(bufio.NewWriter(&twice), bufio.NewReader(bytes.NewReader(once.Bytes())), chunked, chunked)
		if err != nil || m != n || !bytes.Equal(once.Bytes(), twice.Bytes()) {
			t.Fatalf("re-copy of %q: %d bytes, %v, %q", once.Bytes(), m, err, twice.Bytes())
		}
		k, err := CopyBody(bufio.NewWriter(&plain), bufio.NewReader(bytes.NewReader(once.Bytes())), chunked, Framing{Kind: UntilClose})
		if err != nil || k != n || int64(plain.Len()) != n {
			t.Fatalf("decoding %q: %d bytes written, %d counted, %v; first copy counted %d", once.Bytes(), plain.Len(), k, err, n)
		}
	})
}

package http1

import (
	"bytes"
	"io"
	"testing"
)

// typicalRequest has ten header fields, as a browser or SDK sends.
const typicalRequest = "POST /api/v1/orders?limit=10&page=2 HTTP/1.1\r\n" +
	"Host: orders.shop.svc.cluster.local:8080\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-GB,en;q=0.9\r\n" +
	"Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.e30.sig\r\n" +
	"Content-Type: application/json\r\n" +
	"Cookie: session=0123456789abcdef; theme=dark\r\n" +
	"X-Request-Id: 5f2b3c1e-8d4a-4e6b-9f1a-2c3d4e5f6a7b\r\n" +
	"Content-Length: 16\r\n" +
	"\r\n" +
	`{"item":"skein"}`

const typicalResponse = "HTTP/1.1 201 Created\r\n" +
	"Content-Type: application/json\r\n" +
	"Date: Wed, 25 Nov 2026 20:00:00 GMT\r\n" +
	"Server: orders\r\n" +
	"Transfer-Encoding: chunked\r\n" +
	"\r\n" +
	"10\r\n{\"id\":\"o-12345\"}\r\n0\r\nX-Checksum: 1\r\n\r\n"

// The request path allocates nothing once its buffers and arenas have
// grown: parse, filter edits, hop-by-hop removal, write, body copy; and
// the same for the response.
func TestZeroAllocsPerRequest(t *testing.T) {
	reqBytes, respBytes := []byte(typicalRequest), []byte(typicalResponse)
	reqSrc, respSrc := bytes.NewReader(nil), bytes.NewReader(nil)
	br, bw := NewReader(reqSrc), NewWriter(io.Discard)
	ur := NewReader(respSrc)
	var req RequestHead
	var resp ResponseHead
	run := func() {
		reqSrc.Reset(reqBytes)
		br.Reset(reqSrc)
		if err := ParseRequestHead(br, &req); err != nil {
			t.Fatal(err)
		}
		if !req.MethodIs("POST") || string(req.Path()) != "/api/v1/orders" || string(req.Header.Get("content-type")) != "application/json" {
			t.Fatal("parsed wrong")
		}
		req.StripHopByHop()
		req.Header.Del("Cookie")
		req.Header.Set("X-Request-Id", "replaced")
		req.Header.Add("X-Forwarded-Proto", "http")
		req.ReplacePathPrefix("/api/v1", "/v1")
		if err := WriteRequestHead(bw, &req); err != nil {
			t.Fatal(err)
		}
		if n, err := CopyBody(bw, br, req.Body, req.Body); err != nil || n != 16 {
			t.Fatal(n, err)
		}

		respSrc.Reset(respBytes)
		ur.Reset(respSrc)
		if err := ParseResponseHead(ur, &resp, req.Method()); err != nil {
			t.Fatal(err)
		}
		in := resp.Body
		resp.StripHopByHop()
		resp.Header.Set("Server", "skein")
		if err := WriteResponseHead(bw, &resp); err != nil {
			t.Fatal(err)
		}
		if n, err := CopyBody(bw, ur, in, in); err != nil || n != 16 {
			t.Fatal(n, err)
		}
	}
	run() // warm up: arenas and field lists grow once
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Errorf("%v allocations per request and response, want 0", n)
	}
}

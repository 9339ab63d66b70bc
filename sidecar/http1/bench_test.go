package http1

import (
	"bytes"
	"io"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

func BenchmarkParseRequestHead(b *testing.B) {
	raw := []byte(typicalRequest)
	src := bytes.NewReader(raw)
	br := NewReader(src)
	var h RequestHead
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(raw)
		br.Reset(src)
		if err := ParseRequestHead(br, &h); err != nil {
			b.Fatal(err)
		}
	}
}

// benchResponse is what the lean backend answers: a 100-byte body with a
// few fields.
var benchResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Wed, 25 Nov 2026 20:00:00 GMT\r\nContent-Length: 100\r\n\r\n" +
	`{"items":"` + strings.Repeat("x", 100-len(`{"items":""}`)) + `"}`)

// leanBackend answers every request with benchResponse, using the codec
// so that its own cost is small and the same behind every proxy.
func leanBackend(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br, bw, discard := NewReader(c), NewWriter(c), NewWriter(io.Discard)
				var h RequestHead
				for ParseRequestHead(br, &h) == nil {
					if _, err := CopyBody(discard, br, h.Body, h.Body); err != nil {
						return
					}
					bw.Write(benchResponse)
					if bw.Flush() != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// leanClient sends typicalRequest n times on one connection to addr and
// reads each response.
func leanClient(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	req := []byte(typicalRequest)
	br, bw, discard := NewReader(c), NewWriter(c), NewWriter(io.Discard)
	var h ResponseHead
	method := []byte("POST")
	exchange := func() {
		bw.Write(req)
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := ParseResponseHead(br, &h, method); err != nil {
			b.Fatal(err)
		}
		if n, err := CopyBody(discard, br, h.Body, Framing{Kind: UntilClose}); h.Status != 200 || n != 100 || err != nil {
			b.Fatalf("status %d, %d bytes, %v", h.Status, n, err)
		}
	}
	exchange() // connections up and buffers grown before timing
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		exchange()
	}
}

// BenchmarkForwardLoop sends the same requests over one keep-alive
// connection straight to a backend, through the codec's forwarding loop,
// and through net/http/httputil.ReverseProxy, and reports each proxy's
// throughput as a fraction of direct (x_direct).
func BenchmarkForwardLoop(b *testing.B) {
	backend := leanBackend(b)
	u, _ := url.Parse("http://" + backend)
	rp := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	b.Cleanup(rp.Close)
	skein := startProxy(b, backend)
	ns := map[string]float64{}
	for _, tc := range []struct{ name, addr string }{
		{"direct", backend},
		{"skein", skein.addr()},
		{"httputil", rp.Listener.Addr().String()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			leanClient(b, tc.addr)
			ns[tc.name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if tc.name != "direct" && ns["direct"] > 0 {
				b.ReportMetric(ns["direct"]/ns[tc.name], "x_direct")
			}
		})
	}
	if ns["skein"] > 0 && ns["httputil"] > 0 {
		b.Logf("throughput vs direct: skein %.2fx, httputil %.2fx; skein/httputil %.2fx",
			ns["direct"]/ns["skein"], ns["direct"]/ns["httputil"], ns["httputil"]/ns["skein"])
	}
}

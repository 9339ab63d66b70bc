package http1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
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

// leanConn is a client connection that sends typicalRequest and reads
// benchResponse with the codec, allocating nothing.
type leanConn struct {
	c           net.Conn
	br          *bufio.Reader
	bw, discard *bufio.Writer
	h           ResponseHead
	req, method []byte
}

func dialLean(b *testing.B, addr string) *leanConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	l := &leanConn{c: c, br: NewReader(c), bw: NewWriter(c), discard: NewWriter(io.Discard),
		req: []byte(typicalRequest), method: []byte("POST")}
	l.exchange(b) // connections up and buffers grown before timing
	return l
}

func (l *leanConn) exchange(b *testing.B) {
	l.bw.Write(l.req)
	if err := l.bw.Flush(); err != nil {
		b.Error(err)
		return
	}
	if err := ParseResponseHead(l.br, &l.h, l.method); err != nil {
		b.Error(err)
		return
	}
	if n, err := CopyBody(l.discard, l.br, l.h.Body, l.h.Body); l.h.Status != 200 || n != 100 || err != nil {
		b.Errorf("status %d, %d bytes, %v", l.h.Status, n, err)
	}
}

// leanClient sends b.N requests on one connection to addr.
func leanClient(b *testing.B, addr string) {
	l := dialLean(b, addr)
	defer l.c.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		l.exchange(b)
	}
}

// benchTargets starts the backend, the codec's loop and httputil in front
// of it.
func benchTargets(b *testing.B) []struct{ name, addr string } {
	backend := leanBackend(b)
	u, _ := url.Parse("http://" + backend)
	rp := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	b.Cleanup(rp.Close)
	skein := startProxy(b, backend)
	return []struct{ name, addr string }{
		{"direct", backend},
		{"skein", skein.addr()},
		{"httputil", rp.Listener.Addr().String()},
	}
}

// BenchmarkForwardLoop sends the same requests over one keep-alive
// connection straight to a backend, through the codec's forwarding loop,
// and through net/http/httputil.ReverseProxy, and reports each proxy's
// throughput as a fraction of direct (x_direct).
func BenchmarkForwardLoop(b *testing.B) {
	ns := map[string]float64{}
	for _, tc := range benchTargets(b) {
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

// BenchmarkForwardLoopParallel is BenchmarkForwardLoop with GOMAXPROCS*4
// client connections at once: throughput when the proxy is busy.
func BenchmarkForwardLoopParallel(b *testing.B) {
	ns := map[string]float64{}
	for _, tc := range benchTargets(b) {
		b.Run(tc.name, func(b *testing.B) {
			b.SetParallelism(4)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				l := dialLean(b, tc.addr)
				defer l.c.Close()
				for pb.Next() {
					l.exchange(b)
				}
			})
			ns[tc.name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if tc.name != "direct" && ns["direct"] > 0 {
				b.ReportMetric(ns["direct"]/ns[tc.name], "x_direct")
			}
		})
	}
}

// BenchmarkLatencyAt1000rps sends one request per millisecond, as the
// issue's latency goal is stated, and reports the median and 99th
// percentile round trip in microseconds; skein's and httputil's
// p99_added_us is their p99 less direct's in the same run.
func BenchmarkLatencyAt1000rps(b *testing.B) {
	p99 := map[string]float64{}
	for _, tc := range benchTargets(b) {
		b.Run(tc.name, func(b *testing.B) {
			l := dialLean(b, tc.addr)
			defer l.c.Close()
			lat := make([]time.Duration, 0, b.N)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			b.ResetTimer()
			for range b.N {
				<-tick.C
				start := time.Now()
				l.exchange(b)
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
			b.ReportMetric(at(0.5), "p50_us")
			b.ReportMetric(at(0.99), "p99_us")
			p99[tc.name] = at(0.99)
			if tc.name != "direct" {
				b.ReportMetric(p99[tc.name]-p99["direct"], "p99_added_us")
			}
		})
	}
}

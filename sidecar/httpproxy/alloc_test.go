package httpproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/skeinmesh/skein/sidecar/http1"
	"github.com/skeinmesh/skein/sidecar/stats"
)

// rawBackend is an HTTP/1.1 server built on the http1 codec that allocates
// nothing per request, so that allocation counts measure the proxy alone.
func rawBackend(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	const resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world\n"
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br, bw := http1.NewReader(c), http1.NewWriter(c)
				discard := http1.NewWriter(io.Discard)
				var req http1.RequestHead
				for {
					if err := http1.ParseRequestHead(br, &req); err != nil {
						return
					}
					if req.Body.Kind != http1.NoBody {
						if _, err := http1.CopyBody(discard, br, req.Body, req.Body); err != nil {
							return
						}
					}
					bw.WriteString(resp)
					if bw.Flush() != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// rawClient sends GETs on one keep-alive connection with the http1 codec.
type rawClient struct {
	c    net.Conn
	br   *bufio.Reader
	resp http1.ResponseHead
	req  []byte
}

func newRawClient(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{c: c, br: bufio.NewReaderSize(c, 16<<10),
		req: []byte("GET /bench/path?x=1 HTTP/1.1\r\nHost: svc.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")}
}

// do runs one request and checks the response.
func (rc *rawClient) do(tb testing.TB) {
	if _, err := rc.c.Write(rc.req); err != nil {
		tb.Fatal(err)
	}
	if err := http1.ParseResponseHead(rc.br, &rc.resp, []byte("GET")); err != nil {
		tb.Fatal(err)
	}
	if rc.resp.Status != 200 || rc.resp.Body.Kind != http1.ContentLength {
		tb.Fatalf("status %d framing %v", rc.resp.Status, rc.resp.Body)
	}
	if _, err := rc.br.Discard(int(rc.resp.Body.Length)); err != nil {
		tb.Fatal(err)
	}
}

// allocProxy is a proxy to the raw backend with stats, request ids and
// header edits on: the steady-state request path with its usual work.
func allocProxy(t testing.TB, backend string) *proxy {
	r := toCluster("/bench/", "c")
	r.GetRoute().PrefixRewrite = "/rewritten/"
	hcm := inline(routeConfig("rc", vhost("svc", []string{"svc.example"}, r)))
	return startProxy(t, hcm, Deps{Clusters: clusterSet{"c": cluster(t, "c", false, backend)}, Stats: stats.New()})
}

func TestHTTP1SteadyStateAllocatesNothing(t *testing.T) {
	p := allocProxy(t, rawBackend(t))
	rc := newRawClient(t, p.addr)
	for range 100 { // warm up: pools, arenas, the upstream connection
		rc.do(t)
	}
	time.Sleep(10 * time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { rc.do(t) }); n != 0 {
		t.Fatalf("%v allocations per proxied request, want 0", n)
	}
}

// BenchmarkHTTP1 compares GETs on one keep-alive connection sent to the
// backend directly and through the proxy, in the same run; the ratio is
// logged (indicative: the client, proxy and backend share the machine).
func BenchmarkHTTP1(b *testing.B) {
	backend := rawBackend(b)
	p := allocProxy(b, backend)
	var direct, proxied time.Duration
	b.Run("direct", func(b *testing.B) {
		rc := newRawClient(b, backend)
		b.ReportAllocs()
		for b.Loop() {
			rc.do(b)
		}
		direct = b.Elapsed() / time.Duration(b.N)
	})
	b.Run("proxy", func(b *testing.B) {
		rc := newRawClient(b, p.addr)
		b.ReportAllocs()
		for b.Loop() {
			rc.do(b)
		}
		proxied = b.Elapsed() / time.Duration(b.N)
	})
	if direct > 0 {
		b.Logf("direct %v/request, through the proxy %v/request: %.2fx", direct, proxied, float64(proxied)/float64(direct))
	}
}

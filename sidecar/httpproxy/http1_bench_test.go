package httpproxy

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skeinmesh/skein/sidecar/http1"
	"github.com/skeinmesh/skein/sidecar/stats"
)

// TestHTTP1StaleConnectionResent: the backend closes every connection just
// after its response, without saying so. The next GET, moments later,
// reuses the pooled connection without a liveness peek (it was idle less
// than upstream.ReplayPeekAfter), meets the close, and is resent on a new
// connection: the client sees 200 every time. Regression test for dropping
// the MSG_PEEK on every reuse (issue 6).
func TestHTTP1StaleConnectionResent(t *testing.T) {
	addr, accepted := closingBackend(t)
	cl := cluster(t, "c", false, addr)
	hcm := inline(routeConfig("rc", vhost("svc", []string{"*"}, toCluster("/", "c"))))
	p := startProxy(t, hcm, Deps{Clusters: clusterSet{"c": cl}})
	rc := newRawClient(t, p.addr)
	for i := range 5 {
		if _, err := rc.c.Write(rc.req); err != nil {
			t.Fatal(err)
		}
		if err := http1.ParseResponseHead(rc.br, &rc.resp, []byte("GET")); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if rc.resp.Status != 200 {
			t.Fatalf("request %d: status %d, want 200 (resent on a new connection)", i, rc.resp.Status)
		}
		rc.br.Discard(int(rc.resp.Body.Length))
		time.Sleep(10 * time.Millisecond) // the backend's FIN arrives
	}
	if n := accepted.Load(); n != 5 {
		t.Errorf("backend accepted %d connections for 5 requests, want 5", n)
	}
}

// BenchmarkHTTP1Conns32 is the shape of make bench-proxy's HTTP/1.1
// saturation run in one process: 32 keep-alive connections sending GETs
// through the proxy to the raw backend. Run it with GOMAXPROCS=1 and
// -cpuprofile to see the proxy's share (client and backend are in the
// profile too, in functions of their own).
func BenchmarkHTTP1Conns32(b *testing.B) {
	backend := rawBackend(b)
	r := toCluster("/", "c")
	hcm := inline(routeConfig("rc", vhost("svc", []string{"*"}, r)))
	p := startProxy(b, hcm, Deps{Clusters: clusterSet{"c": cluster(b, "c", false, backend)}, Stats: stats.New()})
	const conns = 32
	clients := make([]*rawClient, conns)
	for i := range clients {
		clients[i] = newRawClient(b, p.addr)
		clients[i].do(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, rc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				rc.do(b)
			}
		}()
	}
	wg.Wait()
}

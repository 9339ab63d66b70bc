package httpproxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"

	"github.com/skeinmesh/skein/sidecar/stats"
)

// BenchmarkHTTP2ToHTTP1 is the shape of make bench-proxy's HTTP/2
// saturation run in one process: h2c GETs on one client connection, b's
// parallelism streams at a time (-cpu and SetParallelism), through the
// proxy to the raw HTTP/1.1 backend. allocs/op counts the client's
// (x/net's Transport, about 40) with the proxy's: compare runs, not the
// absolute number. Run it with GOMAXPROCS=1 and -cpuprofile to see the
// proxy's share.
func BenchmarkHTTP2ToHTTP1(b *testing.B) {
	backend := rawBackend(b)
	r := toCluster("/", "c")
	r.GetRoute().Timeout = nil // the default 15s, as in bench-proxy's bootstrap
	hcm := inline(routeConfig("rc", vhost("svc", []string{"*"}, r)))
	p := startProxy(b, hcm, Deps{Clusters: clusterSet{"c": cluster(b, "c", false, backend)}, Stats: stats.New()})
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	b.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequest("GET", "http://"+p.addr+"/bench/path?x=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	do := func(buf []byte) error {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.ReadFull(resp.Body, buf[:13]); err != nil || resp.StatusCode != 200 {
			return err
		}
		return nil
	}
	if err := do(make([]byte, 13)); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(10)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 64)
		for pb.Next() {
			if err := do(buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

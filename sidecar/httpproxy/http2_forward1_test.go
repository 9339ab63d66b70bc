package httpproxy

import (
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

// TestH2RouteTimeoutToHTTP1: on the HTTP/2 to HTTP/1.1 path the route's
// timeout is the upstream connection's deadline (no context deadline): a
// backend that stalls before its head gets 504 upstream_timeout, in time.
func TestH2RouteTimeoutToHTTP1(t *testing.T) {
	stall := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	rt := toCluster("/", "stall")
	rt.GetRoute().Timeout = durationpb.New(200 * time.Millisecond)
	hcm := inline(routeConfig("rc", vhost("all", []string{"*"}, rt)))
	p := startProxy(t, hcm, Deps{Clusters: clusterSet{"stall": cluster(t, "stall", false, stall.addr)}})
	c := h2cClient(t, p.addr)
	start := time.Now()
	resp, err := c.Get("http://svc/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 504 || resp.Header.Get(HeaderReason) != string(ReasonUpstreamTimeout) || time.Since(start) > 3*time.Second {
		t.Errorf("%d %q after %v, want 504 %s within the route's timeout", resp.StatusCode, resp.Header.Get(HeaderReason), time.Since(start), ReasonUpstreamTimeout)
	}
}

// TestH2StaleConnectionResent: as TestHTTP1StaleConnectionResent for an
// HTTP/2 client: the backend closes every connection just after its
// response, without saying so; the next GET reuses the pooled connection
// without a liveness peek (HTTP1Replayable), meets the close, and is
// resent on a new connection: the client sees 200 every time.
func TestH2StaleConnectionResent(t *testing.T) {
	addr, accepted := closingBackend(t)
	hcm := inline(routeConfig("rc", vhost("svc", []string{"*"}, toCluster("/", "c"))))
	p := startProxy(t, hcm, Deps{Clusters: clusterSet{"c": cluster(t, "c", false, addr)}})
	c := h2cClient(t, p.addr)
	for i := range 5 {
		resp, err := c.Get("http://svc/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q (%s), want 200 (resent on a new connection)", i, resp.StatusCode, body, resp.Header.Get(HeaderReason))
		}
		time.Sleep(10 * time.Millisecond) // the backend's FIN arrives
	}
	if n := accepted.Load(); n != 5 {
		t.Errorf("backend accepted %d connections for 5 requests, want 5", n)
	}
}

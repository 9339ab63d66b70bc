package server

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skeinmesh/skein/internal/xds/server/xdstest"
)

// Many proxies, half on state-of-the-world and half on delta streams over
// several connections, all get their config, all get a change pushed after
// one Trigger, and all are forgotten when they leave. The times are logged,
// not asserted: the machine is shared.
func TestManyProxiesConverge(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	gen := newTestGenerator()
	s := startServer(t, Options{Generate: gen.Generate, Quiet: 100 * time.Millisecond, MaxDelay: time.Second})
	ctx := testCtx(t)

	conns := make([]*grpc.ClientConn, 10)
	for i := range conns {
		c, err := grpc.NewClient(s.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}

	// acked[i] is when proxy i ACKed an endpoint version with port 9090.
	var mu sync.Mutex
	acked := make([]time.Time, n)
	clients := make([]*xdstest.Client, n)
	start := time.Now()
	for i := range n {
		i := i
		c, err := xdstest.Connect(ctx, conns[i%len(conns)], xdstest.Options{
			NodeID: fmt.Sprintf("sidecar~10.1.%d.%d~web-%d.shop~shop.svc.cluster.local", i/250, i%250, i),
			Delta:  i%2 == 1,
			OnUpdate: func(u xdstest.Update) {
				if u.TypeURL == resource.EndpointType && !u.NACKed && u.Version != "" {
					mu.Lock()
					acked[i] = u.Received
					mu.Unlock()
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	for _, c := range clients {
		if err := c.WaitAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, s, "all synced", func(c ProxyCounts) bool { return c.Synced == n })
	t.Logf("%d proxies connected and synced in %s", n, time.Since(start))

	first := c0Version(clients[0])
	mu.Lock()
	clear(acked)
	mu.Unlock()
	gen.set(func(sp *spec) { sp.port = 9090; sp.generation = 2 })
	triggered := time.Now()
	s.Trigger()
	for _, c := range clients {
		if err := c.Wait(ctx, func(v map[string]string) bool { return v[resource.EndpointType] != first }); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, s, "all synced on generation 2", func(c ProxyCounts) bool { return c.Synced == n && c.Generation == 2 })
	mu.Lock()
	lat := make([]time.Duration, n)
	for i, at := range acked {
		lat[i] = at.Sub(triggered)
	}
	mu.Unlock()
	slices.Sort(lat)
	t.Logf("trigger to new version received (including the 100ms quiet period): p50 %s, p99 %s, max %s", lat[n/2], lat[n*99/100], lat[n-1])

	for _, c := range clients {
		c.Close()
	}
	waitStatus(t, s, "all forgotten", func(c ProxyCounts) bool { return c.Total == 0 })
	if keys := s.cache.GetStatusKeys(); len(keys) != 0 {
		t.Errorf("cache still tracks %d nodes", len(keys))
	}
}

func c0Version(c *xdstest.Client) string { return c.Versions()[resource.EndpointType] }

package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skeinmesh/skein/internal/mesh"
	"github.com/skeinmesh/skein/internal/xds/server/xdstest"
)

// The per-type cluster discovery service serves the same snapshot as ADS,
// and its ACK counts.
func TestClusterDiscoveryService(t *testing.T) {
	gen := newTestGenerator()
	s := startServer(t, Options{Generate: gen.Generate})
	ctx := testCtx(t)
	cds := clusterservice.NewClusterDiscoveryServiceClient(s.conn)
	st, err := cds.StreamClusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: webNode}}); err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetTypeUrl() != resource.ClusterType || len(resp.GetResources()) != 1 {
		t.Fatalf("got %s with %d resources, want one cluster", resp.GetTypeUrl(), len(resp.GetResources()))
	}
	c := &clusterv3.Cluster{}
	if err := resp.GetResources()[0].UnmarshalTo(c); err != nil || c.GetName() != "backend" {
		t.Fatalf("cluster %v (%v), want backend", c.GetName(), err)
	}
	if got := s.Status(backendRef); got.Total != 1 || got.Synced != 0 {
		t.Fatalf("Status = %+v before the ACK, want 1 proxy, not synced", got)
	}
	if err := st.Send(&discovery.DiscoveryRequest{VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, "ACK over CDS syncs", func(c ProxyCounts) bool { return c.Synced == 1 })

	// While the stream is open, the unary Fetch answers for the node too.
	fetched, err := cds.FetchClusters(ctx, &discovery.DiscoveryRequest{Node: &core.Node{Id: webNode}})
	if err != nil {
		t.Fatal(err)
	}
	if len(fetched.GetResources()) != 1 {
		t.Errorf("Fetch got %d clusters, want 1", len(fetched.GetResources()))
	}
	if _, err := cds.FetchClusters(ctx, &discovery.DiscoveryRequest{Node: &core.Node{Id: "nonsense"}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Fetch with a malformed node id: %v, want InvalidArgument", err)
	}
}

// Changes fires on connect, ACK and disconnect.
func TestChangesFires(t *testing.T) {
	gen := newTestGenerator()
	s := startServer(t, Options{Generate: gen.Generate})
	ctx := testCtx(t)
	drain := func() {
		for {
			select {
			case <-s.Changes():
			default:
				return
			}
		}
	}
	expect := func(what string) {
		t.Helper()
		select {
		case <-s.Changes():
		case <-time.After(10 * time.Second):
			t.Fatalf("no change reported after %s", what)
		}
	}
	c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: webNode})
	if err != nil {
		t.Fatal(err)
	}
	expect("connect")
	waitStatus(t, s, "synced", func(c ProxyCounts) bool { return c.Synced == 1 })
	drain()
	select {
	case <-s.Changes():
		t.Fatal("a change reported while nothing changed")
	case <-time.After(100 * time.Millisecond):
	}
	gen.set(func(sp *spec) { sp.port = 9090 })
	s.Trigger()
	expect("new version")
	waitStatus(t, s, "new version synced", func(c ProxyCounts) bool { return c.Synced == 1 })
	drain()
	c.Close()
	expect("disconnect")
	if got := s.Status(backendRef); got.Total != 0 {
		t.Errorf("Status = %+v after disconnect", got)
	}
}

// A proxy whose first generation fails keeps its stream and gets its
// config from the next regeneration.
func TestGeneratorErrorRetriedOnTrigger(t *testing.T) {
	gen := newTestGenerator()
	fail := make(chan bool, 1)
	fail <- true
	s := startServer(t, Options{Generate: func(ctx context.Context, p mesh.Proxy) (Config, error) {
		select {
		case <-fail:
			return Config{}, errors.New("pod not in the model yet")
		default:
			return gen.Generate(ctx, p)
		}
	}})
	ctx := testCtx(t)
	c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: webNode})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(200 * time.Millisecond)
	if n := c.Responses(resource.ClusterType); n != 0 {
		t.Fatalf("got %d responses though generation failed", n)
	}
	s.Trigger()
	if err := c.WaitAll(ctx); err != nil {
		t.Fatal(err)
	}
}

// On an ADS stream a change to every type arrives in Envoy's order:
// clusters, endpoints, listeners, routes.
func TestADSPushOrder(t *testing.T) {
	modes(t, testADSPushOrder)
}

func testADSPushOrder(t *testing.T, delta bool) {
	gen := newTestGenerator()
	s := startServer(t, Options{Generate: gen.Generate})
	ctx := testCtx(t)
	var mu sync.Mutex
	var order []string
	c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: webNode, Delta: delta, OnUpdate: func(u xdstest.Update) {
		mu.Lock()
		order = append(order, shortType(u.TypeURL))
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitStatus(t, s, "synced", func(c ProxyCounts) bool { return c.Synced == 1 })
	for i := range 5 {
		mu.Lock()
		order = nil
		mu.Unlock()
		gen.set(func(sp *spec) { sp.revision = fmt.Sprint(i) })
		s.regenerateAll(ctx, time.Now())
		if err := c.Wait(ctx, func(map[string]string) bool {
			mu.Lock()
			defer mu.Unlock()
			return len(order) == 4
		}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got := strings.Join(order, ",")
		mu.Unlock()
		if want := "cluster,endpoint,listener,route"; got != want {
			t.Fatalf("push %d arrived as %s, want %s", i, got, want)
		}
	}
}

package upstream

import (
	"context"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/skeinmesh/skein/sidecar/http1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestManagerUpdate: unchanged clusters keep their *Cluster, changed ones
// are rebuilt with their endpoints, a bad update changes nothing.
func TestManagerUpdate(t *testing.T) {
	m := NewManager()
	defer m.Close()
	a, b := edsCluster("a"), edsCluster("b")
	// EDS may answer before CDS: the assignment waits for its cluster.
	if err := m.SetAssignment(assignment(t, "b", "10.0.0.1:80")); err != nil {
		t.Fatal(err)
	}
	if err := m.Update([]*clusterv3.Cluster{a, b}); err != nil {
		t.Fatal(err)
	}
	ca, cb := m.Get("a"), m.Get("b")
	if ca == nil || cb == nil || m.Get("c") != nil {
		t.Fatalf("Get: a %v b %v", ca, cb)
	}
	if len(cb.Hosts()) != 1 {
		t.Errorf("b has %d hosts, want the early assignment's 1", len(cb.Hosts()))
	}

	b2 := proto.Clone(b).(*clusterv3.Cluster)
	b2.ConnectTimeout = durationpb.New(3 * time.Second)
	if err := m.Update([]*clusterv3.Cluster{proto.Clone(a).(*clusterv3.Cluster), b2}); err != nil {
		t.Fatal(err)
	}
	if m.Get("a") != ca {
		t.Error("unchanged cluster a was rebuilt")
	}
	nb := m.Get("b")
	if nb == cb || nb.ConnectTimeout() != 3*time.Second {
		t.Error("changed cluster b was not rebuilt")
	}
	if len(nb.Hosts()) != 1 {
		t.Errorf("rebuilt b has %d hosts, want its endpoints carried over", len(nb.Hosts()))
	}
	if !cb.closed {
		t.Error("replaced cluster b was not closed")
	}

	bad := edsCluster("c")
	bad.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	err := m.Update([]*clusterv3.Cluster{a, edsCluster("d"), bad})
	if err == nil || !strings.Contains(err.Error(), `cluster "c": lb_policy`) {
		t.Fatalf("error %v, want cluster c's lb_policy refused", err)
	}
	if m.Get("d") != nil || m.Get("b") != nb {
		t.Error("a refused update changed the clusters")
	}
	if err := m.Update([]*clusterv3.Cluster{a, a}); err == nil {
		t.Error("a cluster listed twice was accepted")
	}
}

// TestManagerRemovedClusterDrains: a removed cluster's idle connections
// close at once, a connection in use finishes its request first.
func TestManagerRemovedClusterDrains(t *testing.T) {
	bk := startH1(t)
	m := NewManager()
	defer m.Close()
	if err := m.Update([]*clusterv3.Cluster{staticCluster(t, "web", bk.addr)}); err != nil {
		t.Fatal(err)
	}
	c := m.Get("web")
	h, _ := c.Pick(nil)
	ctx := context.Background()
	busy, err := c.HTTP1(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	idle, err := c.HTTP1(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	idle.Release(true)

	if err := m.Update(nil); err != nil {
		t.Fatal(err)
	}
	if m.Get("web") != nil {
		t.Fatal("removed cluster still there")
	}
	for deadline := time.Now().Add(5 * time.Second); bk.closed.Load() < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the idle connection of the removed cluster stayed open")
		}
	}
	var req http1.RequestHead
	var resp http1.ResponseHead
	if err := exchange1(busy, &req, &resp); err != nil {
		t.Fatalf("request in flight on the removed cluster: %v", err)
	}
	busy.Release(true)
	for deadline := time.Now().Add(5 * time.Second); bk.closed.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the busy connection was pooled after the cluster's removal")
		}
	}
	// A host picked before the removal still gets a connection.
	if _, err := get1(ctx, c, h); err != nil {
		t.Errorf("request on a host picked before the removal: %v", err)
	}
}

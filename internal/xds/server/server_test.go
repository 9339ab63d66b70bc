package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skeinmesh/skein/internal/testenv"
	"github.com/skeinmesh/skein/internal/xds/server/xdstest"
)

const webNode = "sidecar~10.0.0.1~web-0.shop~shop.svc.cluster.local"

// modes runs a test over a state-of-the-world and a delta stream.
func modes(t *testing.T, f func(t *testing.T, delta bool)) {
	for _, delta := range []bool{false, true} {
		name := "sotw"
		if delta {
			name = "delta"
		}
		t.Run(name, func(t *testing.T) { f(t, delta) })
	}
}

func waitStatus(t *testing.T, s *testServer, what string, ok func(ProxyCounts) bool) ProxyCounts {
	t.Helper()
	var c ProxyCounts
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, what, func() error {
		if c = s.Status(backendRef); !ok(c) {
			return fmt.Errorf("status %+v", c)
		}
		return nil
	})
	return c
}

func endpointPort(t *testing.T, a *anypb.Any) uint32 {
	t.Helper()
	cla := &endpointv3.ClusterLoadAssignment{}
	if err := a.UnmarshalTo(cla); err != nil {
		t.Fatal(err)
	}
	return cla.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
}

// A proxy gets its snapshot on connect, and its ACKs make it synced.
func TestConnectReceivesConfigAndACKSyncs(t *testing.T) {
	modes(t, func(t *testing.T, delta bool) {
		gen := newTestGenerator()
		gen.set(func(sp *spec) { sp.generation = 3 })
		s := startServer(t, Options{Generate: gen.Generate})
		ctx := testCtx(t)
		c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: webNode, Delta: delta})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WaitAll(ctx); err != nil {
			t.Fatal(err)
		}
		for typ, name := range map[string]string{
			resource.ClusterType: "backend", resource.EndpointType: "backend",
			resource.ListenerType: "listener-80", resource.RouteType: "http-80",
		} {
			if _, ok := c.Resources(typ)[name]; !ok {
				t.Errorf("%s %q not received; got %v", shortType(typ), name, c.Resources(typ))
			}
		}
		got := waitStatus(t, s, "proxy synced", func(c ProxyCounts) bool { return c.Synced == 1 })
		if want := (ProxyCounts{Total: 1, Synced: 1, Generation: 3}); got != want {
			t.Errorf("Status = %+v, want %+v", got, want)
		}
		if n := testutil.ToFloat64(s.metrics.connected); n != 1 {
			t.Errorf("connected proxies = %v, want 1", n)
		}
		if n := testutil.ToFloat64(s.metrics.pushes.WithLabelValues("cluster")); n != 1 {
			t.Errorf("cluster pushes = %v, want 1", n)
		}
		if other := s.Status(ObjectKey{Kind: "MeshService", Namespace: "shop", Name: "other"}); other != (ProxyCounts{}) {
			t.Errorf("Status of an object in no config = %+v, want zero", other)
		}
	})
}

// Before its ACKs arrive a proxy is counted but not synced: Synced follows
// the ACKs rather than the publication.
func TestStatusWaitsForACK(t *testing.T) {
	gen := newTestGenerator()
	s := startServer(t, Options{Generate: gen.Generate})
	ctx := testCtx(t)
	// Accept clusters only: the other types stay un-ACKed (NACKed).
	c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: webNode, Reject: func(typ, _ string, _ map[string]*anypb.Any) string {
		if typ == resource.ClusterType {
			return ""
		}
		return "not yet"
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := waitStatus(t, s, "proxy counted", func(c ProxyCounts) bool { return c.Total == 1 && c.Rejected == 1 })
	if got.Synced != 0 {
		t.Errorf("Status = %+v: synced without ACKing its listeners, routes and endpoints", got)
	}
}

// A NACK's error detail shows in Status; the proxy is rejected until it
// ACKs a newer version.
func TestNACKShowsInStatus(t *testing.T) {
	modes(t, func(t *testing.T, delta bool) {
		gen := newTestGenerator()
		s := startServer(t, Options{Generate: gen.Generate})
		connectRefusing8080(t, s, delta)
		got := waitStatus(t, s, "NACK reported", func(c ProxyCounts) bool { return c.Rejected == 1 })
		if got.Total != 1 || got.Synced != 0 {
			t.Errorf("Status = %+v, want 1 proxy, rejected, not synced", got)
		}
		for _, want := range []string{"port 8080 is reserved", webNode, "endpoint"} {
			if !strings.Contains(got.NACKMessage, want) {
				t.Errorf("NACKMessage %q does not contain %q", got.NACKMessage, want)
			}
		}
		if n := testutil.ToFloat64(s.metrics.nacks.WithLabelValues("endpoint")); n < 1 {
			t.Errorf("endpoint NACKs = %v, want at least 1", n)
		}

		gen.set(func(sp *spec) { sp.port = 9090 })
		s.Trigger()
		got = waitStatus(t, s, "fixed config synced", func(c ProxyCounts) bool { return c.Synced == 1 })
		if got.Rejected != 0 || got.NACKMessage != "" {
			t.Errorf("Status = %+v after the proxy ACKed a newer version, want no rejection", got)
		}
	})
}

// A Trigger after the Generator's output changed delivers a new version of
// the changed type only, and the push time is measured to the ACK.
func TestTriggerDeliversNewVersion(t *testing.T) {
	modes(t, func(t *testing.T, delta bool) {
		gen := newTestGenerator()
		s := startServer(t, Options{Generate: gen.Generate})
		ctx := testCtx(t)
		c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: webNode, Delta: delta})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waitStatus(t, s, "synced", func(c ProxyCounts) bool { return c.Synced == 1 })
		before := c.Versions()

		gen.set(func(sp *spec) { sp.port = 9090; sp.generation = 2 })
		s.Trigger()
		if err := c.Wait(ctx, func(v map[string]string) bool { return v[resource.EndpointType] != before[resource.EndpointType] }); err != nil {
			t.Fatal(err)
		}
		if p := endpointPort(t, c.Resources(resource.EndpointType)["backend"]); p != 9090 {
			t.Errorf("endpoint port = %d after the change, want 9090", p)
		}
		after := c.Versions()
		for _, typ := range []string{resource.ClusterType, resource.ListenerType, resource.RouteType} {
			if after[typ] != before[typ] {
				t.Errorf("%s version changed %q -> %q though its resources did not", shortType(typ), before[typ], after[typ])
			}
			if n := c.Responses(typ); n != 1 {
				t.Errorf("%s responses = %d, want 1 (the unchanged type was pushed again)", shortType(typ), n)
			}
		}
		got := waitStatus(t, s, "new generation synced", func(c ProxyCounts) bool { return c.Synced == 1 && c.Generation == 2 })
		if got.Total != 1 {
			t.Errorf("Status = %+v", got)
		}
		if n := testutil.CollectAndCount(s.metrics.pushSeconds); n != 1 {
			t.Fatalf("push_seconds series = %d", n)
		}
		testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "push time observed", func() error {
			if n := histogramCount(t, s); n != 1 {
				return fmt.Errorf("push_seconds count = %d, want 1", n)
			}
			return nil
		})
	})
}

func histogramCount(t *testing.T, s *testServer) uint64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "skein_xds_push_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// Regenerating a proxy whose output did not change pushes nothing; the same
// regeneration with a changed output does push.
func TestUnchangedOutputPushesNothing(t *testing.T) {
	modes(t, func(t *testing.T, delta bool) {
		gen := newTestGenerator()
		s := startServer(t, Options{Generate: gen.Generate})
		ctx := testCtx(t)
		c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: webNode, Delta: delta})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waitStatus(t, s, "synced", func(c ProxyCounts) bool { return c.Synced == 1 })
		calls := gen.calls.Load()

		s.regenerateAll(ctx, time.Now())
		if gen.calls.Load() == calls {
			t.Fatal("regeneration did not call the generator")
		}
		time.Sleep(300 * time.Millisecond) // a push would arrive in well under this
		for _, typ := range xdstest.AllTypes {
			if n := c.Responses(typ); n != 1 {
				t.Errorf("%s responses = %d after regenerating an unchanged config, want 1", shortType(typ), n)
			}
		}

		gen.set(func(sp *spec) { sp.port = 9090 })
		s.regenerateAll(ctx, time.Now())
		if err := c.Wait(ctx, func(map[string]string) bool { return c.Responses(resource.EndpointType) == 2 }); err != nil {
			t.Fatal(err)
		}
	})
}

// An inconsistent output is not published: the proxy keeps the previous
// snapshot until a consistent one comes.
func TestInconsistentConfigNotPublished(t *testing.T) {
	for _, tt := range []struct {
		name    string
		breakIt func(*spec)
	}{
		{name: "route to a missing cluster", breakIt: func(sp *spec) { sp.routeTo = "ghost" }},
		{name: "EDS cluster without its endpoints", breakIt: func(sp *spec) { sp.dropCLA = true }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gen := newTestGenerator()
			s := startServer(t, Options{Generate: gen.Generate})
			ctx := testCtx(t)
			c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: webNode})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			waitStatus(t, s, "synced", func(c ProxyCounts) bool { return c.Synced == 1 })
			before := c.Versions()
			snapBefore, err := s.cache.GetSnapshot(webNode)
			if err != nil {
				t.Fatal(err)
			}

			gen.set(func(sp *spec) { sp.port = 9090; sp.generation = 2; tt.breakIt(sp) })
			s.regenerateAll(ctx, time.Now())
			snapAfter, err := s.cache.GetSnapshot(webNode)
			if err != nil {
				t.Fatal(err)
			}
			if snapAfter != snapBefore {
				t.Fatal("an inconsistent snapshot replaced the published one")
			}
			time.Sleep(200 * time.Millisecond)
			if after := c.Versions(); !mapsEqual(after, before) {
				t.Errorf("versions changed %v -> %v for an inconsistent config", before, after)
			}
			if got := s.Status(backendRef); got.Generation != 1 {
				t.Errorf("Status generation = %d, want 1: the proxy still runs generation 1", got.Generation)
			}

			gen.set(func(sp *spec) { *sp = spec{port: 9090, generation: 3} })
			s.Trigger()
			waitStatus(t, s, "consistent config synced", func(c ProxyCounts) bool { return c.Synced == 1 && c.Generation == 3 })
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// When a proxy's last stream closes its snapshot and status go.
func TestDisconnectForgetsProxy(t *testing.T) {
	gen := newTestGenerator()
	s := startServer(t, Options{Generate: gen.Generate})
	ctx := testCtx(t)
	first, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: webNode})
	if err != nil {
		t.Fatal(err)
	}
	second, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: webNode, Delta: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*xdstest.Client{first, second} {
		if err := c.WaitAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, s, "synced", func(c ProxyCounts) bool { return c.Synced == 1 })

	first.Close()
	time.Sleep(100 * time.Millisecond)
	if _, err := s.cache.GetSnapshot(webNode); err != nil {
		t.Fatalf("snapshot gone while the proxy still has a stream: %v", err)
	}
	second.Close()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, "snapshot cleared", func() error {
		if _, err := s.cache.GetSnapshot(webNode); err == nil {
			return fmt.Errorf("snapshot of %s still cached", webNode)
		}
		return nil
	})
	if got := s.Status(backendRef); got != (ProxyCounts{}) {
		t.Errorf("Status = %+v after the proxy left, want zero", got)
	}
	if n := testutil.ToFloat64(s.metrics.connected); n != 0 {
		t.Errorf("connected proxies = %v, want 0", n)
	}
	if keys := s.cache.GetStatusKeys(); len(keys) != 0 {
		t.Errorf("cache still tracks %v", keys)
	}
}

// A malformed node ID is refused with InvalidArgument naming the form.
func TestMalformedNodeIDRefused(t *testing.T) {
	modes(t, func(t *testing.T, delta bool) {
		gen := newTestGenerator()
		s := startServer(t, Options{Generate: gen.Generate})
		ctx := testCtx(t)
		c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: "web-0", Delta: delta})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		<-c.Done()
		if code := status.Code(c.Err()); code != codes.InvalidArgument {
			t.Fatalf("stream ended with %v, want InvalidArgument", c.Err())
		}
		if !strings.Contains(c.Err().Error(), "sidecar~<podIP>~<pod>.<namespace>~<namespace>.svc.cluster.local") {
			t.Errorf("error %q does not name the expected form", c.Err())
		}
		if n := c.Responses(resource.ClusterType); n != 0 {
			t.Errorf("got %d cluster responses", n)
		}
		if n := testutil.ToFloat64(s.metrics.rejectedStreams.WithLabelValues(reasonInvalidNode)); n != 1 {
			t.Errorf("rejected streams (invalid_node) = %v, want 1", n)
		}
	})
}

// Regression: go-control-plane's cache answered a state-of-the-world NACK
// with the refused version again at once, so a proxy that could not apply
// its config was sent it thousands of times a second. The refused version
// now waits for the next change.
func TestNACKedVersionIsNotResent(t *testing.T) {
	modes(t, func(t *testing.T, delta bool) {
		gen := newTestGenerator()
		s := startServer(t, Options{Generate: gen.Generate})
		c := connectRefusing8080(t, s, delta)
		waitStatus(t, s, "NACK reported", func(c ProxyCounts) bool { return c.Rejected == 1 })
		time.Sleep(500 * time.Millisecond)
		if n := c.Responses(resource.EndpointType); n != 1 {
			t.Errorf("the proxy was sent the endpoints it refused %d times in 500ms, want once", n)
		}
		gen.set(func(sp *spec) { sp.port = 9090 })
		s.Trigger()
		waitStatus(t, s, "fixed config synced", func(c ProxyCounts) bool { return c.Synced == 1 })
		if n := c.Responses(resource.EndpointType); n != 2 {
			t.Errorf("endpoint responses = %d after the fix, want 2", n)
		}
	})
}

// connectRefusing8080 connects webNode as a proxy that NACKs endpoints on
// port 8080 (the test generator's default) with "port 8080 is reserved".
func connectRefusing8080(t *testing.T, s *testServer, delta bool) *xdstest.Client {
	t.Helper()
	c, err := xdstest.Connect(testCtx(t), s.conn, xdstest.Options{NodeID: webNode, Delta: delta,
		Reject: func(typ, _ string, res map[string]*anypb.Any) string {
			if typ == resource.EndpointType && endpointPort(t, res["backend"]) == 8080 {
				return "port 8080 is reserved"
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

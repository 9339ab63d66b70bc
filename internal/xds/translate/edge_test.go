package translate

import (
	"bytes"
	"reflect"
	"sync"
	"testing"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
)

// TestTwoMeshServicesOneService: two MeshServices of one Kubernetes
// Service share its ClusterIP and names; the translation must still be one
// Envoy accepts (one chain per ClusterIP:port, each domain once).
func TestTwoMeshServicesOneService(t *testing.T) {
	a := httpService("shop", "web", "10.96.9.1", "10.1.9.1")
	b := httpService("shop", "web-canary", "10.96.9.1", "10.1.9.1")
	b.ServiceName = "web"
	b.Host = a.Host
	m := newModel(a, b)
	r := ForProxy(m, client)
	if err := consistent(r); err != nil {
		t.Fatal(err)
	}
	if err := validate(r); err != nil {
		t.Fatal(err)
	}
	if n := len(findListener(r, VirtualOutbound).GetFilterChains()); n != 1 {
		t.Errorf("%d outbound chains for one ClusterIP:port, want 1", n)
	}
}

// TestUnresolvedBackend: a route whose only backend does not exist answers
// 503 rather than sending to a cluster that is not there.
func TestUnresolvedBackend(t *testing.T) {
	s := withPolicy(httpService("shop", "web", "10.96.9.2", "10.1.9.2"), "web-broken", 0, meshv1alpha1.TrafficPolicySpec{
		Routes: []meshv1alpha1.Route{{Name: "gone", Backends: []meshv1alpha1.Backend{{Name: "missing"}, {Subset: "nope"}}}},
	})
	r := ForProxy(newModel(s), client)
	if err := consistent(r); err != nil {
		t.Fatal(err)
	}
	rt := findVHost(findRouteConfig(r, "80"), "web.shop.svc.cluster.local:80").GetRoutes()[0]
	if rt.GetDirectResponse().GetStatus() != 503 {
		t.Errorf("route %v, want a 503 direct response", rt)
	}
}

// TestInboundGRPCClusterSpeaksHTTP2: the local gRPC server is reached over
// HTTP/2, or every call from the sidecar to it would fail.
func TestInboundGRPCClusterSpeaksHTTP2(t *testing.T) {
	s := grpcService("shop", "catalog", "10.96.9.3", "10.1.9.3")
	r := ForProxy(newModel(s), mesh.Proxy{Namespace: "shop", Pod: "catalog-0"})
	c := findCluster(r, "inbound|9090||")
	if c == nil || c.GetTypedExtensionProtocolOptions()[http2OptionsKey] == nil {
		t.Errorf("inbound gRPC cluster %v has no HTTP/2 protocol options", c)
	}
}

// TestMergeKeepsFirstAndSorts pins Merge's contract.
func TestMergeKeepsFirstAndSorts(t *testing.T) {
	m := newModel(httpService("shop", "web", "10.96.9.4", "10.1.9.4"))
	out := Outbound(m, "shop")
	in := Inbound(m, mesh.Proxy{Namespace: "shop", Pod: "web-0"})
	r := Merge(out, in)
	for i := 1; i < len(r.Clusters); i++ {
		if r.Clusters[i-1].GetName() >= r.Clusters[i].GetName() {
			t.Fatalf("clusters not sorted and unique: %s then %s", r.Clusters[i-1].GetName(), r.Clusters[i].GetName())
		}
	}
	if findCluster(r, PassthroughCluster) != findCluster(out, PassthroughCluster) {
		t.Errorf("Merge did not keep the first input's PassthroughCluster")
	}
	if len(r.Listeners) != 2 {
		t.Errorf("listeners %d, want virtualInbound and virtualOutbound", len(r.Listeners))
	}
}

// TestPure: translating leaves the model as it was.
func TestPure(t *testing.T) {
	for _, build := range []func() *mesh.Model{localityModel, benchModel} {
		m, fresh := build(), build()
		ForProxy(m, webPod)
		ForProxy(m, benchProxy)
		if !reflect.DeepEqual(m, fresh) {
			t.Errorf("ForProxy modified its model")
		}
	}
}

// TestSharedOutboundConcurrently: many proxies of a namespace translated at
// once from one shared Outbound (run with -race) all get what ForProxy gives.
func TestSharedOutboundConcurrently(t *testing.T) {
	m := benchModel()
	out := Outbound(m, "ns03")
	want := wireBytes(t, ForProxy(m, benchProxy))
	var wg sync.WaitGroup
	results := make([][]byte, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = wire(ForProxyFrom(m, benchProxy, out))
		}()
	}
	wg.Wait()
	for i, got := range results {
		if !bytes.Equal(got, want) {
			t.Errorf("translation %d from the shared Outbound differs from ForProxy", i)
		}
	}
}

// TestLocalityThenFailoverPriorities: with locality and failover services
// together, the caller's zone comes first, then farther endpoints, then
// the failover service, with no gap where a tier (same region) is empty.
func TestLocalityThenFailoverPriorities(t *testing.T) {
	catalog := withPolicy(func() *mesh.Service {
		s := newService("shop", "catalog", "10.96.9.5", port(80, "http", meshv1alpha1.ProtocolHTTP, 8080))
		s.Endpoints = []mesh.Endpoint{
			localized(endpoint("10.1.9.5", "catalog-a", "catalog", 80, 8080), "eu", "eu-a"),
			localized(endpoint("10.1.9.6", "catalog-b", "catalog", 80, 8080), "us", "us-a"),
		}
		return s
	}(), "catalog-failover", 0, meshv1alpha1.TrafficPolicySpec{Failover: &meshv1alpha1.Failover{
		Locality: true, Services: []meshv1alpha1.ServiceReference{{Name: "backup"}},
	}})
	backup := httpService("shop", "backup", "10.96.9.7", "10.1.9.7")
	web := newService("shop", "web", "10.96.9.8", port(80, "http", meshv1alpha1.ProtocolHTTP, 8080))
	web.Endpoints = []mesh.Endpoint{localized(endpoint("10.1.9.100", "web-0", "web", 80, 8080), "eu", "eu-a")}
	r := ForProxy(newModel(catalog, backup, web), webPod)
	cla := findCLA(r, "outbound|80||catalog.shop.svc.cluster.local")
	for prio, want := range []string{"10.1.9.5:8080", "10.1.9.6:8080", "10.1.9.7:8080"} {
		if got := endpointsAt(cla, uint32(prio)); len(got) != 1 || got[0] != want {
			t.Errorf("priority %d: %v, want [%s]", prio, got, want)
		}
	}
	if err := validate(r); err != nil {
		t.Error(err)
	}
}

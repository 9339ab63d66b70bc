package translate

import (
	"fmt"
	"testing"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
)

// benchModel is 200 services over 10 namespaces, each with an HTTP and a
// gRPC port, 3 endpoints, 2 subsets, and every fourth with a TrafficPolicy
// (weighted split, header match, retries, outlier detection), plus a
// namespace-wide ALLOW policy per namespace.
func benchModel() *mesh.Model {
	var services []*mesh.Service
	var authz []*mesh.AuthorizationPolicy
	for n := range 10 {
		ns := fmt.Sprintf("ns%02d", n)
		authz = append(authz, &mesh.AuthorizationPolicy{Name: "allow-mesh", Namespace: ns, Generation: 1, Spec: &meshv1alpha1.AuthorizationPolicySpec{
			Rules: []meshv1alpha1.AuthorizationRule{{From: []meshv1alpha1.Source{{Namespaces: []meshv1alpha1.ObjectName{"ns00", meshv1alpha1.ObjectName(ns)}}}}},
		}})
		for i := range 20 {
			name := fmt.Sprintf("svc%02d", i)
			s := newService(ns, name, fmt.Sprintf("10.96.%d.%d", n, i+1),
				port(80, "http", meshv1alpha1.ProtocolHTTP, 8080), port(9090, "grpc", meshv1alpha1.ProtocolGRPC, 9090))
			s.Subsets = []mesh.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}, {Name: "v2", Labels: map[string]string{"version": "v2"}}}
			for e := range 3 {
				ep := endpoint(fmt.Sprintf("10.%d.%d.%d", n+1, i, e+1), fmt.Sprintf("%s-%d", name, e), name, 80, 8080)
				ep.Ports[9090] = 9090
				ep.Labels = map[string]string{"version": fmt.Sprintf("v%d", e%2+1)}
				ep.Zone = fmt.Sprintf("eu-%c", 'a'+e)
				s.Endpoints = append(s.Endpoints, ep)
			}
			if i%4 == 0 {
				withPolicy(s, name+"-policy", 0, meshv1alpha1.TrafficPolicySpec{
					Routes: []meshv1alpha1.Route{{
						Matches:  []meshv1alpha1.RouteMatch{{Headers: []meshv1alpha1.HeaderMatch{{Name: "x-canary", Exact: ptr("1")}}}},
						Backends: []meshv1alpha1.Backend{{Subset: "v1", Weight: ptr[int32](90)}, {Subset: "v2", Weight: ptr[int32](10)}},
					}},
					Retries:          &meshv1alpha1.RetryPolicy{},
					OutlierDetection: &meshv1alpha1.OutlierDetection{Consecutive5xx: ptr[int32](5)},
					Failover:         &meshv1alpha1.Failover{Locality: i%8 == 0},
				})
			}
			services = append(services, s)
		}
	}
	m := newModel(services...)
	m.AuthorizationPolicies = authz
	return m
}

// benchProxy is the proxy of pod svc03-1 in namespace ns03.
var benchProxy = mesh.Proxy{ID: "sidecar~10.4.3.2~svc03-1.ns03~ns03.svc.cluster.local", Namespace: "ns03", Pod: "svc03-1", IP: "10.4.3.2"}

// BenchmarkForProxy is one proxy's whole translation, Outbound included.
func BenchmarkForProxy(b *testing.B) {
	m := benchModel()
	if len(m.Services) != 200 {
		b.Fatalf("%d services", len(m.Services))
	}
	b.ReportAllocs()
	for b.Loop() {
		ForProxy(m, benchProxy)
	}
}

// BenchmarkForProxyFrom is one proxy's translation with its namespace's
// Outbound shared, as a server translating many proxies does.
func BenchmarkForProxyFrom(b *testing.B) {
	m := benchModel()
	out := Outbound(m, benchProxy.Namespace)
	b.ReportAllocs()
	for b.Loop() {
		ForProxyFrom(m, benchProxy, out)
	}
}

// BenchmarkOutbound is one namespace's shared outbound translation.
func BenchmarkOutbound(b *testing.B) {
	m := benchModel()
	b.ReportAllocs()
	for b.Loop() {
		Outbound(m, benchProxy.Namespace)
	}
}

// TestBenchModel keeps the benchmark's model honest: it must translate to
// valid, consistent resources, with the proxy's inbound chains and
// localized endpoints.
func TestBenchModel(t *testing.T) {
	m := benchModel()
	r := ForProxy(m, benchProxy)
	if err := validate(r); err != nil {
		t.Fatal(err)
	}
	if err := consistent(r); err != nil {
		t.Fatal(err)
	}
	if n := len(r.Clusters); n < 200*2*3 {
		t.Errorf("%d clusters, want at least 1200 (200 services x 2 ports x 3 subsets)", n)
	}
	if inboundChainOf(r, 8080) == nil || inboundChainOf(r, 9090) == nil {
		t.Errorf("the proxy's pod serves 8080 and 9090 but has no inbound chain for them")
	}
	cla := findCLA(r, "outbound|80||svc00.ns03.svc.cluster.local")
	if len(endpointsAt(cla, 1)) == 0 {
		t.Errorf("svc00 asks for locality failover, yet the proxy in eu-b sees no priority 1: %v", cla)
	}
}

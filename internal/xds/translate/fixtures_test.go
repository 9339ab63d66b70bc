package translate

import (
	"cmp"
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httprbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// scenario is one golden case: a model, the proxy it is translated for, and
// optional checks of what a user would notice, beyond the golden file.
type scenario struct {
	name  string
	about string
	model *mesh.Model
	proxy mesh.Proxy
	check func(t *testing.T, r *Resources)
}

// newModel is a model with the default settings and these services, sorted.
func newModel(services ...*mesh.Service) *mesh.Model {
	slices.SortFunc(services, func(a, b *mesh.Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return &mesh.Model{Settings: meshconfig.Defaults(), ClusterDomain: "cluster.local", Services: services}
}

// newService is a STRICT MeshService with one ClusterIP and these ports.
func newService(ns, name, clusterIP string, ports ...mesh.Port) *mesh.Service {
	return &mesh.Service{
		Name: name, Namespace: ns, ServiceName: name,
		Host:       name + "." + ns + ".svc.cluster.local",
		ClusterIPs: []string{clusterIP},
		Ports:      ports,
		MTLSMode:   meshv1alpha1.MTLSStrict,
		Generation: 1,
	}
}

func port(n int32, name string, proto meshv1alpha1.Protocol, target int32) mesh.Port {
	return mesh.Port{Number: n, Name: name, Protocol: proto, TargetPort: target}
}

// endpoint is a ready pod endpoint serving service port sp on target port tp.
func endpoint(ip, pod, sa string, sp, tp int32) mesh.Endpoint {
	return mesh.Endpoint{IP: ip, Ports: map[int32]int32{sp: tp}, Ready: true, Pod: pod, ServiceAccount: sa,
		Node: "node-a", Region: "eu", Zone: "eu-a"}
}

// withPolicy attaches a TrafficPolicy (port 0: service-wide).
func withPolicy(s *mesh.Service, name string, port int32, spec meshv1alpha1.TrafficPolicySpec) *mesh.Service {
	spec.TargetRef = meshv1alpha1.PolicyTargetReference{Name: meshv1alpha1.ObjectName(s.Name)}
	s.Policies = append(s.Policies, &mesh.TrafficPolicy{Name: name, Namespace: s.Namespace, Generation: 3, Port: port, Spec: &spec})
	slices.SortFunc(s.Policies, func(a, b *mesh.TrafficPolicy) int { return cmp.Compare(a.Port, b.Port) })
	return s
}

func ptr[T any](v T) *T { return &v }

// client is a sidecar proxy in namespace shop whose pod serves no service.
var client = mesh.Proxy{ID: "sidecar~10.1.0.5~client-0.shop~shop.svc.cluster.local", Namespace: "shop", Pod: "client-0", IP: "10.1.0.5"}

// Lookups for checks.

func findCluster(r *Resources, name string) *clusterv3.Cluster {
	for _, c := range r.Clusters {
		if c.GetName() == name {
			return c
		}
	}
	return nil
}

func findCLA(r *Resources, name string) *endpointv3.ClusterLoadAssignment {
	for _, c := range r.Endpoints {
		if c.GetClusterName() == name {
			return c
		}
	}
	return nil
}

func findListener(r *Resources, name string) *listenerv3.Listener {
	for _, l := range r.Listeners {
		if l.GetName() == name {
			return l
		}
	}
	return nil
}

func findRouteConfig(r *Resources, name string) *routev3.RouteConfiguration {
	for _, rc := range r.Routes {
		if rc.GetName() == name {
			return rc
		}
	}
	return nil
}

func findVHost(rc *routev3.RouteConfiguration, name string) *routev3.VirtualHost {
	for _, vh := range rc.GetVirtualHosts() {
		if vh.GetName() == name {
			return vh
		}
	}
	return nil
}

// endpointsAt is the "ip:port" of each endpoint of cla at priority prio.
func endpointsAt(cla *endpointv3.ClusterLoadAssignment, prio uint32) []string {
	var out []string
	for _, l := range cla.GetEndpoints() {
		if l.GetPriority() != prio {
			continue
		}
		for _, e := range l.GetLbEndpoints() {
			sa := e.GetEndpoint().GetAddress().GetSocketAddress()
			out = append(out, sa.GetAddress()+":"+itoa(sa.GetPortValue()))
		}
	}
	return out
}

func itoa(v uint32) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

// httpFilterNames is the HTTP filter names of the HCM packed in a.
func httpFilterNames(t *testing.T, a *anypb.Any) []string {
	t.Helper()
	h := &hcmv3.HttpConnectionManager{}
	if err := a.UnmarshalTo(h); err != nil {
		t.Fatalf("not an HCM: %v", err)
	}
	var out []string
	for _, f := range h.GetHttpFilters() {
		out = append(out, f.GetName())
	}
	return out
}

// inboundChain is the virtualInbound chain of target port tp.
func inboundChainOf(r *Resources, tp uint32) *listenerv3.FilterChain {
	for _, fc := range findListener(r, VirtualInbound).GetFilterChains() {
		if fc.GetFilterChainMatch().GetDestinationPort().GetValue() == tp {
			return fc
		}
	}
	return nil
}

// inboundRBAC is the RBAC rules of the HTTP inbound chain of tp, in filter order.
func inboundRBAC(t *testing.T, r *Resources, tp uint32) []*rbacv3.RBAC {
	t.Helper()
	fc := inboundChainOf(r, tp)
	if fc == nil {
		t.Fatalf("no inbound chain for port %d", tp)
	}
	h := &hcmv3.HttpConnectionManager{}
	if err := fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(h); err != nil {
		t.Fatalf("inbound chain %d: %v", tp, err)
	}
	var out []*rbacv3.RBAC
	for _, f := range h.GetHttpFilters() {
		if f.GetName() != httpRBACFilter {
			continue
		}
		cfg := &httprbacv3.RBAC{}
		if err := f.GetTypedConfig().UnmarshalTo(cfg); err != nil {
			t.Fatal(err)
		}
		out = append(out, cfg.GetRules())
	}
	return out
}

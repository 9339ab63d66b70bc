package mesh

import (
	"math/rand/v2"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// richInputs is a small mesh that uses every kind of input: two namespaces,
// dual-stack slices, pods, nodes, subsets, conflicting policies.
func richInputs() Inputs {
	catalog := meshService("shop", "catalog", msPort(80, "http", meshv1alpha1.ProtocolHTTP), msPort(9000, "grpc", meshv1alpha1.ProtocolGRPC))
	catalog.Spec.ExportTo = []string{".", "web"}
	catalog.Spec.Subsets = []meshv1alpha1.Subset{
		{Name: "v2", Labels: map[string]string{"version": "v2"}},
		{Name: "v1", Labels: map[string]string{"version": "v1"}},
	}
	routed := trafficPolicy("shop", "catalog-routes", "catalog", 80, 0)
	routed.Spec.Routes = []meshv1alpha1.Route{{
		Name:     "v2",
		Matches:  []meshv1alpha1.RouteMatch{{Headers: []meshv1alpha1.HeaderMatch{{Name: "x-canary", Exact: ptr.To("1")}}}},
		Backends: []meshv1alpha1.Backend{{Subset: "v2", Weight: ptr.To[int32](100)}},
	}}
	authz := meshv1alpha1.AuthorizationPolicy{ObjectMeta: meta("shop", "allow-web")}
	authz.Spec.TargetRef = &meshv1alpha1.PolicyTargetReference{Name: "catalog", Port: ptr.To[meshv1alpha1.PortNumber](80)}
	authz.Spec.Rules = []meshv1alpha1.AuthorizationRule{{From: []meshv1alpha1.Source{{Namespaces: []meshv1alpha1.ObjectName{"web"}}}}}
	ports := []discoveryv1.EndpointPort{slicePortNamed("http", 8080), slicePortNamed("grpc", 9000)}
	return Inputs{
		Settings: meshconfig.Defaults(),
		MeshServices: []meshv1alpha1.MeshService{
			catalog, meshService("shop", "cart"), meshService("web", "front"), meshService("web", "zz-no-service"),
		},
		Services: []corev1.Service{
			service("shop", "catalog", []string{"10.96.0.10", "fd00::a"}, svcPort("http", 80, "web"), svcPort("grpc", 9000, 9000)),
			service("shop", "cart", []string{corev1.ClusterIPNone}, svcPort("", 7000, 7000)),
			service("web", "front", []string{"10.96.0.30"}, svcPort("http", 80, 8080)),
		},
		EndpointSlices: []discoveryv1.EndpointSlice{
			endpointSlice("shop", "catalog-v4", "catalog", discoveryv1.AddressTypeIPv4, ports,
				sliceEndpoint("10.0.0.2", onPod("catalog-2"), onNode("node-b")),
				sliceEndpoint("10.0.0.1", onPod("catalog-1"), onNode("node-a"), inZone("z1")),
				sliceEndpoint("10.0.0.3", withConditions(ptr.To(false), ptr.To(true)), onPod("catalog-3"))),
			// An address in two slices: the slice whose name sorts first names its pod.
			endpointSlice("shop", "catalog-v4-stale", "catalog", discoveryv1.AddressTypeIPv4, ports,
				sliceEndpoint("10.0.0.1", onPod("catalog-3"), onNode("node-b"), withConditions(ptr.To(false), nil))),
			endpointSlice("shop", "catalog-v6", "catalog", discoveryv1.AddressTypeIPv6, ports,
				sliceEndpoint("fd00::2", onPod("catalog-2"), onNode("node-b")),
				sliceEndpoint("fd00::1", onPod("catalog-1"), onNode("node-a"))),
			endpointSlice("shop", "cart-1", "cart", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{slicePortNamed("", 7000)},
				sliceEndpoint("10.0.1.1", onPod("cart-1"))),
			endpointSlice("web", "front-1", "front", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{slicePortNamed("http", 8080)},
				sliceEndpoint("10.0.2.1", onPod("front-1"), onNode("node-a"))),
		},
		Pods: []corev1.Pod{
			pod("shop", "catalog-1", "catalog", map[string]string{"app": "catalog", "version": "v1"}),
			pod("shop", "catalog-2", "catalog", map[string]string{"app": "catalog", "version": "v2"}),
			pod("shop", "catalog-3", "catalog", map[string]string{"app": "catalog", "version": "v2"}),
			pod("shop", "cart-1", "cart", map[string]string{"app": "cart"}),
			pod("web", "front-1", "front", map[string]string{"app": "front"}),
		},
		Nodes: []corev1.Node{
			node("node-a", map[string]string{LabelRegion: "r1", LabelZone: "z1", LabelSubZone: "s1"}),
			node("node-b", map[string]string{LabelRegion: "r1", LabelZone: "z2"}),
		},
		TrafficPolicies: []meshv1alpha1.TrafficPolicy{
			routed, trafficPolicy("shop", "catalog-late", "catalog", 80, 60), trafficPolicy("shop", "catalog-all", "catalog", 0, 5),
			trafficPolicy("web", "front", "front", 0, 0), trafficPolicy("shop", "cart-a", "cart", 0, 0), trafficPolicy("shop", "cart-b", "cart", 0, 0),
		},
		AuthorizationPolicies: []meshv1alpha1.AuthorizationPolicy{authz, {ObjectMeta: meta("web", "deny")}, {ObjectMeta: meta("shop", "audit")}},
	}
}

// copyInputs deep-copies every object of in.
func copyInputs(in Inputs) Inputs {
	out := Inputs{Settings: in.Settings, ClusterDomain: in.ClusterDomain}
	for i := range in.MeshServices {
		out.MeshServices = append(out.MeshServices, *in.MeshServices[i].DeepCopy())
	}
	for i := range in.Services {
		out.Services = append(out.Services, *in.Services[i].DeepCopy())
	}
	for i := range in.EndpointSlices {
		out.EndpointSlices = append(out.EndpointSlices, *in.EndpointSlices[i].DeepCopy())
	}
	for i := range in.Pods {
		out.Pods = append(out.Pods, *in.Pods[i].DeepCopy())
	}
	for i := range in.Nodes {
		out.Nodes = append(out.Nodes, *in.Nodes[i].DeepCopy())
	}
	for i := range in.TrafficPolicies {
		out.TrafficPolicies = append(out.TrafficPolicies, *in.TrafficPolicies[i].DeepCopy())
	}
	for i := range in.AuthorizationPolicies {
		out.AuthorizationPolicies = append(out.AuthorizationPolicies, *in.AuthorizationPolicies[i].DeepCopy())
	}
	return out
}

// shuffle reorders every list of in, and the endpoints inside each slice.
func shuffle(r *rand.Rand, in *Inputs) {
	sh := func(n int, swap func(i, j int)) { r.Shuffle(n, swap) }
	sh(len(in.MeshServices), func(i, j int) { in.MeshServices[i], in.MeshServices[j] = in.MeshServices[j], in.MeshServices[i] })
	sh(len(in.Services), func(i, j int) { in.Services[i], in.Services[j] = in.Services[j], in.Services[i] })
	sh(len(in.EndpointSlices), func(i, j int) {
		in.EndpointSlices[i], in.EndpointSlices[j] = in.EndpointSlices[j], in.EndpointSlices[i]
	})
	for k := range in.EndpointSlices {
		eps := in.EndpointSlices[k].Endpoints
		sh(len(eps), func(i, j int) { eps[i], eps[j] = eps[j], eps[i] })
	}
	sh(len(in.Pods), func(i, j int) { in.Pods[i], in.Pods[j] = in.Pods[j], in.Pods[i] })
	sh(len(in.Nodes), func(i, j int) { in.Nodes[i], in.Nodes[j] = in.Nodes[j], in.Nodes[i] })
	sh(len(in.TrafficPolicies), func(i, j int) {
		in.TrafficPolicies[i], in.TrafficPolicies[j] = in.TrafficPolicies[j], in.TrafficPolicies[i]
	})
	sh(len(in.AuthorizationPolicies), func(i, j int) {
		in.AuthorizationPolicies[i], in.AuthorizationPolicies[j] = in.AuthorizationPolicies[j], in.AuthorizationPolicies[i]
	})
}

func TestBuildIsDeterministic(t *testing.T) {
	want := Build(richInputs())
	// The fixture must exercise what shuffling could disturb.
	if len(want.Services) != 3 || want.Services[1].Name != "catalog" || len(want.Services[1].Endpoints) != 5 ||
		len(want.Services[1].Policies) != 2 || len(want.AuthorizationPolicies) != 3 {
		mustEqual(t, "fixture model is not what the test expects", want, nil)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		in := richInputs()
		shuffle(r, &in)
		mustEqual(t, "model from shuffled inputs #"+strconv.Itoa(i), Build(in), want)
	}
}

// scribble changes, in place, every map, slice element and pointee of in
// that Build could keep.
func scribble(in *Inputs) {
	for i := range in.MeshServices {
		s := &in.MeshServices[i].Spec
		for j := range s.ExportTo {
			s.ExportTo[j] = "scribbled"
		}
		for j := range s.Subsets {
			s.Subsets[j].Name = "scribbled"
			s.Subsets[j].Labels["version"] = "scribbled"
		}
		for j := range s.Ports {
			s.Ports[j].Name = "scribbled"
		}
	}
	for i := range in.Services {
		for j := range in.Services[i].Spec.ClusterIPs {
			in.Services[i].Spec.ClusterIPs[j] = "scribbled"
		}
		for j := range in.Services[i].Spec.Ports {
			in.Services[i].Spec.Ports[j].Name = "scribbled"
		}
	}
	for i := range in.Pods {
		in.Pods[i].Labels["app"] = "scribbled"
	}
	for i := range in.Nodes {
		in.Nodes[i].Labels[LabelZone] = "scribbled"
	}
	for i := range in.TrafficPolicies {
		s := &in.TrafficPolicies[i].Spec
		s.TargetRef.Kind = "scribbled"
		for j := range s.Routes {
			s.Routes[j].Name = "scribbled"
			*s.Routes[j].Matches[0].Headers[0].Exact = "scribbled"
		}
	}
	for i := range in.AuthorizationPolicies {
		s := &in.AuthorizationPolicies[i].Spec
		s.Action = "scribbled"
		for j := range s.Rules {
			s.Rules[j].From[0].Namespaces[0] = "scribbled"
		}
	}
}

func TestBuildDoesNotAliasInputs(t *testing.T) {
	in := richInputs()
	want := Build(copyInputs(in))
	got := Build(in)
	scribble(&in)
	mustEqual(t, "model after its inputs changed", got, want)
	// And the other way: changing the model leaves the inputs alone.
	before := copyInputs(richInputs())
	in = richInputs()
	m := Build(in)
	for _, s := range m.Services {
		for i := range s.Subsets {
			s.Subsets[i].Labels["version"] = "scribbled"
		}
		for i := range s.Endpoints {
			if s.Endpoints[i].Labels != nil {
				s.Endpoints[i].Labels["app"] = "scribbled"
			}
		}
		for _, p := range s.Policies {
			p.Spec.TargetRef.Name = "scribbled"
		}
	}
	mustEqual(t, "inputs after the model changed", in, before)
}

package mesh

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// buildCatalog builds the model of one MeshService shop/catalog, port 80
// (named http), with the given slices, pods and nodes, and returns its endpoints.
func buildCatalog(t *testing.T, slices []discoveryv1.EndpointSlice, pods []corev1.Pod, nodes []corev1.Node) []Endpoint {
	t.Helper()
	m := Build(Inputs{
		MeshServices:   []meshv1alpha1.MeshService{meshService("shop", "catalog")},
		Services:       []corev1.Service{service("shop", "catalog", []string{"10.96.0.10"}, svcPort("http", 80, "web"))},
		EndpointSlices: slices,
		Pods:           pods,
		Nodes:          nodes,
	})
	return only(t, m).Endpoints
}

var httpSlicePort = []discoveryv1.EndpointPort{slicePortNamed("http", 8080)}

func TestBuildEndpointReadiness(t *testing.T) {
	tests := []struct {
		name string
		// ready and terminating are the slice endpoint's conditions; nil is unset.
		ready, terminating *bool
		// want is the model endpoint's Ready.
		want bool
	}{
		{name: "ready unset counts as ready", want: true},
		{name: "ready true", ready: ptr.To(true), want: true},
		{name: "ready false", ready: ptr.To(false), want: false},
		{name: "ready and terminating false", ready: ptr.To(true), terminating: ptr.To(false), want: true},
		{name: "terminating", ready: ptr.To(false), terminating: ptr.To(true), want: false},
		{name: "terminating with ready unset", terminating: ptr.To(true), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := buildCatalog(t, []discoveryv1.EndpointSlice{
				endpointSlice("shop", "catalog-a", "catalog", discoveryv1.AddressTypeIPv4, httpSlicePort,
					sliceEndpoint("10.0.0.1", withConditions(tt.ready, tt.terminating))),
			}, nil, nil)
			if len(eps) != 1 || eps[0].Ready != tt.want {
				t.Fatalf("endpoints = %+v, want one with Ready %v", eps, tt.want)
			}
		})
	}
}

func TestBuildEndpointSlices(t *testing.T) {
	tests := []struct {
		name string
		// slices are the Service's EndpointSlices (and others').
		slices []discoveryv1.EndpointSlice
		// want are the endpoints' IPs, in order, with Ready and the port for 80.
		want []Endpoint
	}{
		{
			name: "dual-stack slices are merged, IPv4 first, sorted numerically",
			slices: []discoveryv1.EndpointSlice{
				endpointSlice("shop", "catalog-v6", "catalog", discoveryv1.AddressTypeIPv6, httpSlicePort, sliceEndpoint("fd00::2"), sliceEndpoint("fd00::1")),
				endpointSlice("shop", "catalog-v4", "catalog", discoveryv1.AddressTypeIPv4, httpSlicePort, sliceEndpoint("10.0.0.10"), sliceEndpoint("10.0.0.9")),
			},
			want: []Endpoint{
				{IP: "10.0.0.9", Ports: map[int32]int32{80: 8080}, Ready: true},
				{IP: "10.0.0.10", Ports: map[int32]int32{80: 8080}, Ready: true},
				{IP: "fd00::1", Ports: map[int32]int32{80: 8080}, Ready: true},
				{IP: "fd00::2", Ports: map[int32]int32{80: 8080}, Ready: true},
			},
		},
		{
			name: "FQDN slices and other services' slices are ignored",
			slices: []discoveryv1.EndpointSlice{
				endpointSlice("shop", "catalog-fqdn", "catalog", discoveryv1.AddressTypeFQDN, httpSlicePort, sliceEndpoint("db.example.com")),
				endpointSlice("shop", "cart-a", "cart", discoveryv1.AddressTypeIPv4, httpSlicePort, sliceEndpoint("10.0.1.1")),
				endpointSlice("web", "catalog-a", "catalog", discoveryv1.AddressTypeIPv4, httpSlicePort, sliceEndpoint("10.0.2.1")),
				endpointSlice("shop", "catalog-a", "catalog", discoveryv1.AddressTypeIPv4, httpSlicePort, sliceEndpoint("10.0.0.1")),
			},
			want: []Endpoint{{IP: "10.0.0.1", Ports: map[int32]int32{80: 8080}, Ready: true}},
		},
		{
			name: "an address in two slices is one endpoint, ready if either says so",
			slices: []discoveryv1.EndpointSlice{
				endpointSlice("shop", "catalog-a", "catalog", discoveryv1.AddressTypeIPv4, httpSlicePort, sliceEndpoint("10.0.0.1")),
				endpointSlice("shop", "catalog-b", "catalog", discoveryv1.AddressTypeIPv4, httpSlicePort,
					sliceEndpoint("10.0.0.1", withConditions(ptr.To(false), nil))),
			},
			want: []Endpoint{{IP: "10.0.0.1", Ports: map[int32]int32{80: 8080}, Ready: true}},
		},
		{
			name: "IPv6 addresses are written in canonical form",
			slices: []discoveryv1.EndpointSlice{
				endpointSlice("shop", "catalog-a", "catalog", discoveryv1.AddressTypeIPv6, httpSlicePort, sliceEndpoint("FD00:0:0::1")),
				endpointSlice("shop", "catalog-b", "catalog", discoveryv1.AddressTypeIPv6, httpSlicePort, sliceEndpoint("fd00::1")),
			},
			want: []Endpoint{{IP: "fd00::1", Ports: map[int32]int32{80: 8080}, Ready: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustEqual(t, "endpoints", buildCatalog(t, tt.slices, nil, nil), tt.want)
		})
	}
}

func TestBuildEndpointPodsAndLocality(t *testing.T) {
	pods := []corev1.Pod{
		pod("shop", "catalog-1", "catalog-sa", map[string]string{"app": "catalog", "version": "v1"}),
		pod("web", "catalog-2", "web-sa", map[string]string{"app": "other"}),
	}
	nodes := []corev1.Node{
		node("node-a", map[string]string{LabelRegion: "eu-west", LabelZone: "eu-west-1a", LabelSubZone: "rack-7"}),
		node("node-b", map[string]string{LabelRegion: "eu-west"}),
	}
	tests := []struct {
		name string
		// ep is the slice's endpoint.
		ep discoveryv1.Endpoint
		// want is the model's endpoint.
		want Endpoint
	}{
		{
			name: "pod's labels and service account, node's locality",
			ep:   sliceEndpoint("10.0.0.1", onPod("catalog-1"), onNode("node-a"), inZone("ignored")),
			want: Endpoint{IP: "10.0.0.1", Ports: map[int32]int32{80: 8080}, Ready: true, Pod: "catalog-1", ServiceAccount: "catalog-sa",
				Labels: map[string]string{"app": "catalog", "version": "v1"}, Node: "node-a", Region: "eu-west", Zone: "eu-west-1a", SubZone: "rack-7"},
		},
		{
			name: "zone falls back to the slice's when the node has no zone label",
			ep:   sliceEndpoint("10.0.0.1", onNode("node-b"), inZone("eu-west-1b")),
			want: Endpoint{IP: "10.0.0.1", Ports: map[int32]int32{80: 8080}, Ready: true, Node: "node-b", Region: "eu-west", Zone: "eu-west-1b"},
		},
		{
			name: "unknown node: the slice's zone only",
			ep:   sliceEndpoint("10.0.0.1", onNode("node-gone"), inZone("eu-west-1c")),
			want: Endpoint{IP: "10.0.0.1", Ports: map[int32]int32{80: 8080}, Ready: true, Node: "node-gone", Zone: "eu-west-1c"},
		},
		{
			name: "pod not (yet) in the cache: named, without labels",
			ep:   sliceEndpoint("10.0.0.1", onPod("catalog-9")),
			want: Endpoint{IP: "10.0.0.1", Ports: map[int32]int32{80: 8080}, Ready: true, Pod: "catalog-9"},
		},
		{
			name: "a pod of the same name in another namespace is not joined",
			ep:   sliceEndpoint("10.0.0.1", onPod("catalog-2")),
			want: Endpoint{IP: "10.0.0.1", Ports: map[int32]int32{80: 8080}, Ready: true, Pod: "catalog-2"},
		},
		{
			name: "a target that is not a pod",
			ep: sliceEndpoint("10.0.0.1", func(e *discoveryv1.Endpoint) {
				e.TargetRef = &corev1.ObjectReference{Kind: "VirtualMachineInstance", Name: "catalog-1"}
			}),
			want: Endpoint{IP: "10.0.0.1", Ports: map[int32]int32{80: 8080}, Ready: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := buildCatalog(t, []discoveryv1.EndpointSlice{
				endpointSlice("shop", "catalog-a", "catalog", discoveryv1.AddressTypeIPv4, httpSlicePort, tt.ep),
			}, pods, nodes)
			mustEqual(t, "endpoints", eps, []Endpoint{tt.want})
		})
	}
}

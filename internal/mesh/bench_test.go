package mesh

import (
	"fmt"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// benchInputs is a mesh of n services in 10 namespaces, each with two
// ports, three endpoints on pods spread over 3 zones, and a policy.
func benchInputs(n int) Inputs {
	var in Inputs
	for z := range 3 {
		in.Nodes = append(in.Nodes, node(fmt.Sprintf("node-%d", z), map[string]string{LabelRegion: "r", LabelZone: fmt.Sprintf("z%d", z)}))
	}
	ports := []discoveryv1.EndpointPort{slicePortNamed("http", 8080), slicePortNamed("grpc", 9000)}
	for i := range n {
		ns, name := fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("svc-%d", i)
		in.MeshServices = append(in.MeshServices, meshService(ns, name, msPort(80, "http", meshv1alpha1.ProtocolHTTP), msPort(9000, "grpc", meshv1alpha1.ProtocolGRPC)))
		in.Services = append(in.Services, service(ns, name, []string{fmt.Sprintf("10.96.%d.%d", i/256, i%256)}, svcPort("http", 80, "web"), svcPort("grpc", 9000, 9000)))
		var eps []discoveryv1.Endpoint
		for j := range 3 {
			podName := fmt.Sprintf("%s-%d", name, j)
			eps = append(eps, sliceEndpoint(fmt.Sprintf("10.%d.%d.%d", j, i/256, i%256), onPod(podName), onNode(fmt.Sprintf("node-%d", j))))
			in.Pods = append(in.Pods, pod(ns, podName, name, map[string]string{"app": name, "version": "v1"}))
		}
		in.EndpointSlices = append(in.EndpointSlices, endpointSlice(ns, name+"-abcde", name, discoveryv1.AddressTypeIPv4, ports, eps...))
		in.TrafficPolicies = append(in.TrafficPolicies, trafficPolicy(ns, name, name, 80, 0))
	}
	return in
}

func BenchmarkBuild(b *testing.B) {
	in := benchInputs(1000)
	b.ReportAllocs()
	var m *Model
	for b.Loop() {
		m = Build(in)
	}
	if len(m.Services) != 1000 || len(m.Services[0].Endpoints) != 3 || len(m.Services[0].Policies) != 1 {
		b.Fatalf("benchmark model is wrong: %d services", len(m.Services))
	}
}

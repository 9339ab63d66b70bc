package mesh

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// Literal Kubernetes objects for Build's tests, in the shape the API server
// stores them.

func meta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1}
}

func service(ns, name string, clusterIPs []string, ports ...corev1.ServicePort) corev1.Service {
	s := corev1.Service{ObjectMeta: meta(ns, name), Spec: corev1.ServiceSpec{ClusterIPs: clusterIPs, Ports: ports}}
	if len(clusterIPs) > 0 {
		s.Spec.ClusterIP = clusterIPs[0]
	}
	return s
}

// svcPort is a TCP Service port; target is an int or a string.
func svcPort(name string, port int32, target any) corev1.ServicePort {
	p := corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP}
	switch t := target.(type) {
	case int:
		p.TargetPort = intstr.FromInt32(int32(t))
	case string:
		p.TargetPort = intstr.FromString(t)
	}
	return p
}

func meshService(ns, name string, ports ...meshv1alpha1.MeshServicePort) meshv1alpha1.MeshService {
	return meshv1alpha1.MeshService{ObjectMeta: meta(ns, name), Spec: meshv1alpha1.MeshServiceSpec{Ports: ports}}
}

func msPort(port int32, name string, protocol meshv1alpha1.Protocol) meshv1alpha1.MeshServicePort {
	return meshv1alpha1.MeshServicePort{Port: meshv1alpha1.PortNumber(port), Name: name, Protocol: protocol}
}

// slicePortNamed is an EndpointSlice port; name "" leaves it unnamed, as
// the EndpointSlice controller does for a Service's single unnamed port.
func slicePortNamed(name string, port int32) discoveryv1.EndpointPort {
	p := discoveryv1.EndpointPort{Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}
	if name != "" {
		p.Name = ptr.To(name)
	}
	return p
}

func endpointSlice(ns, name, svc string, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: at,
		Ports:       ports,
		Endpoints:   eps,
	}
}

// sliceEndpoint is a ready endpoint; opts change it.
func sliceEndpoint(ip string, opts ...func(*discoveryv1.Endpoint)) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func onPod(name string) func(*discoveryv1.Endpoint) {
	return func(e *discoveryv1.Endpoint) { e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: name} }
}

func onNode(name string) func(*discoveryv1.Endpoint) {
	return func(e *discoveryv1.Endpoint) { e.NodeName = ptr.To(name) }
}

func inZone(zone string) func(*discoveryv1.Endpoint) {
	return func(e *discoveryv1.Endpoint) { e.Zone = ptr.To(zone) }
}

func withConditions(ready, terminating *bool) func(*discoveryv1.Endpoint) {
	return func(e *discoveryv1.Endpoint) {
		e.Conditions = discoveryv1.EndpointConditions{Ready: ready, Terminating: terminating}
	}
}

func pod(ns, name, sa string, labels map[string]string) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{ServiceAccountName: sa},
	}
}

func node(name string, labels map[string]string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// epoch is the creation time of the oldest test policy.
var epoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// trafficPolicy targets a MeshService (and a port unless it is 0), created
// age seconds after epoch.
func trafficPolicy(ns, name, target string, port int32, age int) meshv1alpha1.TrafficPolicy {
	tp := meshv1alpha1.TrafficPolicy{ObjectMeta: meta(ns, name)}
	tp.CreationTimestamp = metav1.NewTime(epoch.Add(time.Duration(age) * time.Second))
	tp.Spec.TargetRef = meshv1alpha1.PolicyTargetReference{Kind: meshv1alpha1.TargetKindMeshService, Name: meshv1alpha1.ObjectName(target)}
	if port != 0 {
		tp.Spec.TargetRef.Port = ptr.To(meshv1alpha1.PortNumber(port))
	}
	return tp
}

func deleting(m *metav1.ObjectMeta) {
	now := metav1.NewTime(epoch)
	m.DeletionTimestamp = &now
	m.Finalizers = []string{"example.com/hold"}
}

// mustEqual fails the test with both values as JSON when they differ.
func mustEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("%s:\ngot  %s\nwant %s", what, g, w)
	}
}

// only returns the model's single service, failing the test otherwise.
func only(t *testing.T, m *Model) *Service {
	t.Helper()
	if len(m.Services) != 1 {
		t.Fatalf("model has %d services, want 1: %+v", len(m.Services), m.Services)
	}
	return m.Services[0]
}

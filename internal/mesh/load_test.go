package mesh

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/meshconfig"
	"github.com/skeinmesh/skein/internal/testenv"
)

// TestLoad writes a meshed service, its endpoints, pod and node and two
// rival policies to a real API server and reads the model back through a
// client that reads straight from the server.
func TestLoad(t *testing.T) {
	cluster, err := testenv.StartCluster(nil)
	if err != nil {
		t.Fatalf("start API server: %v", err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	c, ctx := cluster.Client, context.Background()
	create := func(obj client.Object) {
		t.Helper()
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
		}
	}

	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "mesh-load-"}}
	create(nsObj)
	ns := nsObj.Name
	create(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{
		LabelRegion: "eu-west", LabelZone: "eu-west-1a", LabelSubZone: "rack-7",
	}}})
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "catalog"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "catalog"},
			Ports:    []corev1.ServicePort{svcPort("http", 80, "web"), svcPort("grpc", 9000, 9000)},
		},
	}
	create(svc)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "catalog-1", Labels: map[string]string{"app": "catalog", "version": "v1"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "catalog",
			NodeName:           "node-a",
			Containers:         []corev1.Container{{Name: "app", Image: "registry.local/catalog:v1"}},
		},
	}
	create(p)
	create(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "catalog-x1", Labels: map[string]string{discoveryv1.LabelServiceName: "catalog"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{slicePortNamed("http", 8080), slicePortNamed("grpc", 9000)},
		Endpoints: []discoveryv1.Endpoint{
			{
				Addresses:  []string{"10.1.0.5"},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: p.Name, UID: p.UID},
				NodeName:   ptr.To("node-a"),
			},
			{Addresses: []string{"10.1.0.6"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
	})
	create(&meshv1alpha1.MeshService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "catalog"},
		Spec:       meshv1alpha1.MeshServiceSpec{Ports: []meshv1alpha1.MeshServicePort{{Port: 80, Protocol: meshv1alpha1.ProtocolHTTP}, {Port: 9000}}},
	})
	// first is created before second, so it is older or, within the same
	// second, first by name: it wins port 80.
	for _, name := range []string{"first", "second"} {
		tp := trafficPolicy(ns, name, "catalog", 80, 0)
		tp.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: name}
		tp.Spec.Timeouts = &meshv1alpha1.Timeouts{Request: ptr.To[meshv1alpha1.Duration]("2s")}
		create(&tp)
	}
	create(&meshv1alpha1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allow-all"}})

	m, err := Load(ctx, c, meshconfig.Defaults())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The API server may add labels to the pod (the node's topology, with
	// PodTopologyLabelsAdmission); the model has the pod's labels as stored.
	if p.Labels["app"] != "catalog" || p.Labels["version"] != "v1" {
		t.Fatalf("the API server stored pod labels %v", p.Labels)
	}
	if len(svc.Spec.ClusterIPs) == 0 {
		t.Fatalf("the API server gave Service catalog no cluster IP: %+v", svc.Spec)
	}
	s := only(t, m)
	if len(s.Policies) != 1 {
		t.Fatalf("policies in force = %+v, want one", s.Policies)
	}
	tp := s.Policies[0]
	if tp.Name != "first" || tp.Port != 80 || tp.Spec.Timeouts == nil || *tp.Spec.Timeouts.Request != "2s" {
		t.Errorf("policy in force = %+v, want first on port 80 with its 2s request timeout", tp)
	}
	s.Policies = nil
	mustEqual(t, "service", s, &Service{
		Name: "catalog", Namespace: ns, ServiceName: "catalog", Host: "catalog." + ns + ".svc.cluster.local",
		ClusterIPs: svc.Spec.ClusterIPs,
		Ports: []Port{
			{Number: 80, Name: "http", Protocol: meshv1alpha1.ProtocolHTTP},
			{Number: 9000, Name: "grpc", Protocol: meshv1alpha1.ProtocolAuto, TargetPort: 9000},
		},
		MTLSMode:   meshv1alpha1.MTLSStrict,
		Generation: 1,
		Endpoints: []Endpoint{
			{
				IP: "10.1.0.5", Ports: map[int32]int32{80: 8080, 9000: 9000}, Ready: true,
				Pod: "catalog-1", ServiceAccount: "catalog", Labels: p.Labels,
				Node: "node-a", Region: "eu-west", Zone: "eu-west-1a", SubZone: "rack-7",
			},
			{IP: "10.1.0.6", Ports: map[int32]int32{80: 8080, 9000: 9000}},
		},
	})
	if len(m.AuthorizationPolicies) != 1 || m.AuthorizationPolicies[0].Name != "allow-all" || m.AuthorizationPolicies[0].Spec.Action != meshv1alpha1.ActionAllow {
		t.Errorf("authorization policies = %+v, want allow-all with the defaulted action ALLOW", m.AuthorizationPolicies)
	}
	if m.Settings != meshconfig.Defaults() {
		t.Errorf("settings = %+v, want the defaults passed in", m.Settings)
	}
}

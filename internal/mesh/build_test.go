package mesh

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

func TestBuildPorts(t *testing.T) {
	tests := []struct {
		name string
		// msPorts are the MeshService's spec.ports.
		msPorts []meshv1alpha1.MeshServicePort
		// svcPorts are the Service's ports.
		svcPorts []corev1.ServicePort
		// slicePorts are the ports of the one EndpointSlice, whose endpoint is 10.0.0.1.
		slicePorts []discoveryv1.EndpointPort
		// wantPorts are the model's meshed ports.
		wantPorts []Port
		// wantEndpointPorts is the endpoint's service port -> endpoint port map.
		wantEndpointPorts map[int32]int32
	}{
		{
			name:              "named targetPort is resolved from the slice",
			svcPorts:          []corev1.ServicePort{svcPort("http", 80, "web")},
			slicePorts:        []discoveryv1.EndpointPort{slicePortNamed("http", 8080)},
			wantPorts:         []Port{{Number: 80, Name: "http", Protocol: meshv1alpha1.ProtocolAuto, TargetPort: 0}},
			wantEndpointPorts: map[int32]int32{80: 8080},
		},
		{
			name:              "numeric targetPort",
			svcPorts:          []corev1.ServicePort{svcPort("http", 80, 9090)},
			slicePorts:        []discoveryv1.EndpointPort{slicePortNamed("http", 9090)},
			wantPorts:         []Port{{Number: 80, Name: "http", Protocol: meshv1alpha1.ProtocolAuto, TargetPort: 9090}},
			wantEndpointPorts: map[int32]int32{80: 9090},
		},
		{
			name:              "unset targetPort is the port, as the API server defaults it",
			svcPorts:          []corev1.ServicePort{{Name: "http", Port: 80}},
			slicePorts:        []discoveryv1.EndpointPort{slicePortNamed("http", 80)},
			wantPorts:         []Port{{Number: 80, Name: "http", Protocol: meshv1alpha1.ProtocolAuto, TargetPort: 80}},
			wantEndpointPorts: map[int32]int32{80: 80},
		},
		{
			name:              "single unnamed port matches the slice's unnamed port",
			svcPorts:          []corev1.ServicePort{svcPort("", 80, 8080)},
			slicePorts:        []discoveryv1.EndpointPort{slicePortNamed("", 8080)},
			wantPorts:         []Port{{Number: 80, Protocol: meshv1alpha1.ProtocolAuto, TargetPort: 8080}},
			wantEndpointPorts: map[int32]int32{80: 8080},
		},
		{
			name: "empty spec.ports meshes every TCP port with AUTO, sorted",
			svcPorts: []corev1.ServicePort{
				svcPort("grpc", 9000, 9000), svcPort("http", 80, "web"),
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			},
			slicePorts: []discoveryv1.EndpointPort{
				slicePortNamed("http", 8080), slicePortNamed("grpc", 9000),
				{Name: ptr.To("dns"), Port: ptr.To[int32](53), Protocol: ptr.To(corev1.ProtocolUDP)},
			},
			wantPorts: []Port{
				{Number: 80, Name: "http", Protocol: meshv1alpha1.ProtocolAuto},
				{Number: 9000, Name: "grpc", Protocol: meshv1alpha1.ProtocolAuto, TargetPort: 9000},
			},
			wantEndpointPorts: map[int32]int32{80: 8080, 9000: 9000},
		},
		{
			name:              "declared port takes its own name and protocol",
			msPorts:           []meshv1alpha1.MeshServicePort{msPort(80, "web", meshv1alpha1.ProtocolHTTP)},
			svcPorts:          []corev1.ServicePort{svcPort("http", 80, 8080), svcPort("admin", 81, 8081)},
			slicePorts:        []discoveryv1.EndpointPort{slicePortNamed("http", 8080), slicePortNamed("admin", 8081)},
			wantPorts:         []Port{{Number: 80, Name: "web", Protocol: meshv1alpha1.ProtocolHTTP, TargetPort: 8080}},
			wantEndpointPorts: map[int32]int32{80: 8080},
		},
		{
			name:              "declared port without name or protocol takes the Service's name and AUTO",
			msPorts:           []meshv1alpha1.MeshServicePort{msPort(80, "", "")},
			svcPorts:          []corev1.ServicePort{svcPort("http", 80, 8080)},
			slicePorts:        []discoveryv1.EndpointPort{slicePortNamed("http", 8080)},
			wantPorts:         []Port{{Number: 80, Name: "http", Protocol: meshv1alpha1.ProtocolAuto, TargetPort: 8080}},
			wantEndpointPorts: map[int32]int32{80: 8080},
		},
		{
			name: "declared port the Service lacks, or has only for UDP, is dropped",
			msPorts: []meshv1alpha1.MeshServicePort{
				msPort(80, "", meshv1alpha1.ProtocolHTTP), msPort(81, "", meshv1alpha1.ProtocolTCP), msPort(53, "", meshv1alpha1.ProtocolTCP),
			},
			svcPorts:          []corev1.ServicePort{svcPort("http", 80, 8080), {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}},
			slicePorts:        []discoveryv1.EndpointPort{slicePortNamed("http", 8080)},
			wantPorts:         []Port{{Number: 80, Name: "http", Protocol: meshv1alpha1.ProtocolHTTP, TargetPort: 8080}},
			wantEndpointPorts: map[int32]int32{80: 8080},
		},
		{
			name:              "endpoint without the slice port does not serve it",
			svcPorts:          []corev1.ServicePort{svcPort("http", 80, "web"), svcPort("metrics", 9090, "metrics")},
			slicePorts:        []discoveryv1.EndpointPort{slicePortNamed("http", 8080)},
			wantPorts:         []Port{{Number: 80, Name: "http", Protocol: meshv1alpha1.ProtocolAuto}, {Number: 9090, Name: "metrics", Protocol: meshv1alpha1.ProtocolAuto}},
			wantEndpointPorts: map[int32]int32{80: 8080},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Build(Inputs{
				MeshServices:   []meshv1alpha1.MeshService{meshService("shop", "catalog", tt.msPorts...)},
				Services:       []corev1.Service{service("shop", "catalog", []string{"10.96.0.10"}, tt.svcPorts...)},
				EndpointSlices: []discoveryv1.EndpointSlice{endpointSlice("shop", "catalog-abc", "catalog", discoveryv1.AddressTypeIPv4, tt.slicePorts, sliceEndpoint("10.0.0.1"))},
			})
			s := only(t, m)
			mustEqual(t, "ports", s.Ports, tt.wantPorts)
			if len(s.Endpoints) != 1 {
				t.Fatalf("endpoints = %+v, want one", s.Endpoints)
			}
			mustEqual(t, "endpoint ports", s.Endpoints[0].Ports, tt.wantEndpointPorts)
		})
	}
}

func TestBuildServiceFields(t *testing.T) {
	ms := meshService("shop", "catalog", msPort(80, "http", meshv1alpha1.ProtocolHTTP))
	ms.Generation = 7
	ms.Spec.ExportTo = []string{".", "web"}
	ms.Spec.Subsets = []meshv1alpha1.Subset{
		{Name: "v2", Labels: map[string]string{"version": "v2"}},
		{Name: "canary", Labels: map[string]string{"track": "canary"}},
	}
	headless := meshService("shop", "db")
	headless.Spec.MTLS = &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}
	renamed := meshService("shop", "front")
	renamed.Spec.ServiceRef = &meshv1alpha1.LocalServiceReference{Name: "frontend"}
	noService := meshService("shop", "ghost")

	m := Build(Inputs{
		Settings:      meshconfig.Defaults(),
		ClusterDomain: "corp.example",
		MeshServices:  []meshv1alpha1.MeshService{ms, headless, renamed, noService},
		Services: []corev1.Service{
			service("shop", "catalog", []string{"10.96.0.10", "fd00::10"}, svcPort("http", 80, 8080)),
			service("shop", "db", []string{corev1.ClusterIPNone}, svcPort("pg", 5432, 5432)),
			service("shop", "frontend", []string{"10.96.0.20"}, svcPort("http", 80, 8080)),
			service("other", "ghost", []string{"10.96.0.30"}, svcPort("http", 80, 8080)),
		},
	})
	want := []*Service{
		{
			Name: "catalog", Namespace: "shop", ServiceName: "catalog", Host: "catalog.shop.svc.corp.example",
			ClusterIPs: []string{"10.96.0.10", "fd00::10"},
			Ports:      []Port{{Number: 80, Name: "http", Protocol: meshv1alpha1.ProtocolHTTP, TargetPort: 8080}},
			Subsets: []Subset{
				{Name: "canary", Labels: map[string]string{"track": "canary"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"}},
			},
			ExportTo: []string{".", "web"}, MTLSMode: meshv1alpha1.MTLSStrict, Generation: 7,
		},
		{
			Name: "db", Namespace: "shop", ServiceName: "db", Host: "db.shop.svc.corp.example",
			Ports:    []Port{{Number: 5432, Name: "pg", Protocol: meshv1alpha1.ProtocolAuto, TargetPort: 5432}},
			MTLSMode: meshv1alpha1.MTLSPermissive, Generation: 1,
		},
		{
			Name: "front", Namespace: "shop", ServiceName: "frontend", Host: "frontend.shop.svc.corp.example",
			ClusterIPs: []string{"10.96.0.20"},
			Ports:      []Port{{Number: 80, Name: "http", Protocol: meshv1alpha1.ProtocolAuto, TargetPort: 8080}},
			MTLSMode:   meshv1alpha1.MTLSStrict, Generation: 1,
		},
	}
	mustEqual(t, "services", m.Services, want)
	if m.Settings != meshconfig.Defaults() || m.ClusterDomain != "corp.example" {
		t.Errorf("settings %+v, cluster domain %q: not carried over", m.Settings, m.ClusterDomain)
	}
	if d := Build(Inputs{}).ClusterDomain; d != "cluster.local" {
		t.Errorf("default cluster domain = %q, want cluster.local", d)
	}
}

func TestBuildSkipsDeletingObjects(t *testing.T) {
	tests := []struct {
		name string
		// mutate marks one of the inputs as being deleted.
		mutate func(in *Inputs)
		// wantServices, wantEndpoints, wantPolicies and wantAuthz count what is left.
		wantServices, wantEndpoints, wantPolicies, wantAuthz int
	}{
		{name: "nothing deleted", mutate: func(*Inputs) {}, wantServices: 1, wantEndpoints: 1, wantPolicies: 1, wantAuthz: 1},
		{name: "MeshService", mutate: func(in *Inputs) { deleting(&in.MeshServices[0].ObjectMeta) }, wantAuthz: 1},
		{name: "Service", mutate: func(in *Inputs) { deleting(&in.Services[0].ObjectMeta) }, wantAuthz: 1},
		{name: "EndpointSlice", mutate: func(in *Inputs) { deleting(&in.EndpointSlices[0].ObjectMeta) }, wantServices: 1, wantPolicies: 1, wantAuthz: 1},
		{name: "TrafficPolicy", mutate: func(in *Inputs) { deleting(&in.TrafficPolicies[0].ObjectMeta) }, wantServices: 1, wantEndpoints: 1, wantAuthz: 1},
		{name: "AuthorizationPolicy", mutate: func(in *Inputs) { deleting(&in.AuthorizationPolicies[0].ObjectMeta) }, wantServices: 1, wantEndpoints: 1, wantPolicies: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Inputs{
				MeshServices:          []meshv1alpha1.MeshService{meshService("shop", "catalog")},
				Services:              []corev1.Service{service("shop", "catalog", []string{"10.96.0.10"}, svcPort("http", 80, 8080))},
				EndpointSlices:        []discoveryv1.EndpointSlice{endpointSlice("shop", "catalog-a", "catalog", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{slicePortNamed("http", 8080)}, sliceEndpoint("10.0.0.1"))},
				TrafficPolicies:       []meshv1alpha1.TrafficPolicy{trafficPolicy("shop", "catalog", "catalog", 0, 0)},
				AuthorizationPolicies: []meshv1alpha1.AuthorizationPolicy{{ObjectMeta: meta("shop", "allow-web")}},
			}
			tt.mutate(&in)
			m := Build(in)
			var endpoints, policies int
			for _, s := range m.Services {
				endpoints += len(s.Endpoints)
				policies += len(s.Policies)
			}
			if len(m.Services) != tt.wantServices || endpoints != tt.wantEndpoints || policies != tt.wantPolicies || len(m.AuthorizationPolicies) != tt.wantAuthz {
				t.Errorf("services %d, endpoints %d, policies %d, authorization policies %d; want %d, %d, %d, %d",
					len(m.Services), endpoints, policies, len(m.AuthorizationPolicies),
					tt.wantServices, tt.wantEndpoints, tt.wantPolicies, tt.wantAuthz)
			}
		})
	}
}

func TestBuildAuthorizationPolicies(t *testing.T) {
	deny := meshv1alpha1.AuthorizationPolicy{ObjectMeta: meta("shop", "deny-all"), Spec: meshv1alpha1.AuthorizationPolicySpec{Action: meshv1alpha1.ActionDeny}}
	deny.Generation = 3
	m := Build(Inputs{AuthorizationPolicies: []meshv1alpha1.AuthorizationPolicy{
		{ObjectMeta: meta("web", "allow")}, deny, {ObjectMeta: meta("shop", "allow")},
	}})
	var got []string
	for _, ap := range m.AuthorizationPolicies {
		got = append(got, ap.Namespace+"/"+ap.Name)
	}
	mustEqual(t, "order", got, []string{"shop/allow", "shop/deny-all", "web/allow"})
	if ap := m.AuthorizationPolicies[1]; ap.Generation != 3 || ap.Spec.Action != meshv1alpha1.ActionDeny {
		t.Errorf("shop/deny-all = generation %d, action %q; want 3, DENY", ap.Generation, ap.Spec.Action)
	}
}

package mesh

import (
	"cmp"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// DefaultClusterDomain is the DNS suffix of Services when Inputs leave it unset.
const DefaultClusterDomain = "cluster.local"

// Inputs are the Kubernetes objects a Model is built from, as the operator's
// informers hold them. Build reads them and never modifies them.
type Inputs struct {
	// Settings are the mesh-wide settings.
	Settings meshconfig.Settings
	// ClusterDomain is the DNS suffix of Services; empty means "cluster.local".
	ClusterDomain string
	// MeshServices are every MeshService in the cluster.
	MeshServices []meshv1alpha1.MeshService
	// Services are the Kubernetes Services; only those a MeshService names are used.
	Services []corev1.Service
	// EndpointSlices are the Services' EndpointSlices.
	EndpointSlices []discoveryv1.EndpointSlice
	// Pods give endpoints their labels and service account.
	Pods []corev1.Pod
	// Nodes give endpoints their region, zone and subzone.
	Nodes []corev1.Node
	// TrafficPolicies are every TrafficPolicy; conflicts are resolved by Build.
	TrafficPolicies []meshv1alpha1.TrafficPolicy
	// AuthorizationPolicies are every AuthorizationPolicy.
	AuthorizationPolicies []meshv1alpha1.AuthorizationPolicy
}

// nsName is a namespaced object's key.
type nsName struct{ namespace, name string }

// Build makes the mesh model from the objects in. It is pure: it makes no
// client calls, its output is sorted and does not depend on the order of
// the inputs, and the Model shares no map, slice or pointer with in.
// MeshServices, Services, EndpointSlices and policies being deleted
// (deletionTimestamp set) are left out; pods and nodes being deleted still
// describe their endpoints.
//
// Decisions the API leaves open:
//   - only TCP Service ports are meshed; a declared port the Service has
//     only for UDP or SCTP is dropped like one it lacks;
//   - an endpoint is its first address (the API calls them fungible);
//   - an address in several slices is one endpoint: its ports are the
//     union, it is ready when any slice says so, and its pod and node come
//     from the slice whose name sorts first;
//   - endpoints are sorted by address value, IPv4 before IPv6;
//   - a TrafficPolicy whose regexes do not compile is not in force, and
//     still holds its claim (as the controllers' Accepted condition says).
func Build(in Inputs) *Model {
	domain := in.ClusterDomain
	if domain == "" {
		domain = DefaultClusterDomain
	}
	services := make(map[nsName]*corev1.Service, len(in.Services))
	for i := range in.Services {
		s := &in.Services[i]
		if s.DeletionTimestamp == nil {
			services[nsName{s.Namespace, s.Name}] = s
		}
	}
	idx := newEndpointIndex(in)

	m := &Model{Settings: in.Settings, ClusterDomain: domain}
	for i := range in.MeshServices {
		ms := &in.MeshServices[i]
		if ms.DeletionTimestamp != nil {
			continue
		}
		svc, ok := services[nsName{ms.Namespace, ms.ServiceName()}]
		if !ok {
			continue
		}
		s := buildService(ms, svc, domain)
		s.Endpoints = idx.endpoints(svc, s.Ports)
		m.Services = append(m.Services, s)
	}
	slices.SortFunc(m.Services, func(a, b *Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	attachPolicies(m.Services, in.TrafficPolicies)
	m.AuthorizationPolicies = authorizationPolicies(in.AuthorizationPolicies)
	return m
}

// buildService joins a MeshService with its Service, without endpoints or policies.
func buildService(ms *meshv1alpha1.MeshService, svc *corev1.Service, domain string) *Service {
	s := &Service{
		Name:        ms.Name,
		Namespace:   ms.Namespace,
		ServiceName: svc.Name,
		Host:        svc.Name + "." + svc.Namespace + ".svc." + domain,
		Ports:       meshedPorts(ms, svc),
		ExportTo:    slices.Clone(ms.Spec.ExportTo),
		MTLSMode:    meshv1alpha1.MTLSStrict,
		Generation:  ms.Generation,
	}
	for _, ip := range svc.Spec.ClusterIPs {
		if ip != "" && ip != corev1.ClusterIPNone {
			s.ClusterIPs = append(s.ClusterIPs, ip)
		}
	}
	if len(svc.Spec.ClusterIPs) == 0 && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		// Objects written before dual-stack carry only clusterIP.
		s.ClusterIPs = []string{svc.Spec.ClusterIP}
	}
	if ms.Spec.MTLS != nil && ms.Spec.MTLS.Mode != "" {
		s.MTLSMode = ms.Spec.MTLS.Mode
	}
	for _, sub := range ms.Spec.Subsets {
		s.Subsets = append(s.Subsets, Subset{Name: string(sub.Name), Labels: maps.Clone(sub.Labels)})
	}
	slices.SortFunc(s.Subsets, func(a, b Subset) int { return cmp.Compare(a.Name, b.Name) })
	return s
}

// meshedPorts joins the MeshService's declared ports with the Service's TCP
// ports. With no declared ports every TCP port of the Service is meshed
// with protocol AUTO; a declared port the Service lacks is dropped.
func meshedPorts(ms *meshv1alpha1.MeshService, svc *corev1.Service) []Port {
	var ports []Port
	if len(ms.Spec.Ports) == 0 {
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			if isTCP(sp.Protocol) {
				ports = append(ports, Port{Number: sp.Port, Name: sp.Name, Protocol: meshv1alpha1.ProtocolAuto, TargetPort: targetPort(sp)})
			}
		}
	} else {
		for _, dp := range ms.Spec.Ports {
			sp := serviceTCPPort(svc, int32(dp.Port))
			if sp == nil {
				continue
			}
			p := Port{Number: sp.Port, Name: cmp.Or(dp.Name, sp.Name), Protocol: dp.Protocol, TargetPort: targetPort(sp)}
			if p.Protocol == "" {
				p.Protocol = meshv1alpha1.ProtocolAuto
			}
			ports = append(ports, p)
		}
	}
	slices.SortFunc(ports, func(a, b Port) int { return cmp.Compare(a.Number, b.Number) })
	return slices.CompactFunc(ports, func(a, b Port) bool { return a.Number == b.Number })
}

// serviceTCPPort is the Service's TCP port numbered number, or nil.
func serviceTCPPort(svc *corev1.Service, number int32) *corev1.ServicePort {
	for i := range svc.Spec.Ports {
		if sp := &svc.Spec.Ports[i]; sp.Port == number && isTCP(sp.Protocol) {
			return sp
		}
	}
	return nil
}

// isTCP reports whether a Service port protocol is TCP; the API server
// defaults an empty one to TCP.
func isTCP(p corev1.Protocol) bool { return p == "" || p == corev1.ProtocolTCP }

// targetPort is the Service port's targetPort when it is a number, 0 when
// it names a container port. An unset targetPort is the port itself, as
// the API server defaults it.
func targetPort(sp *corev1.ServicePort) int32 {
	if sp.TargetPort.Type == intstr.String {
		return 0
	}
	if sp.TargetPort.IntVal == 0 {
		return sp.Port
	}
	return sp.TargetPort.IntVal
}

// authorizationPolicies copies the policies not being deleted, sorted by namespace then name.
func authorizationPolicies(in []meshv1alpha1.AuthorizationPolicy) []*AuthorizationPolicy {
	var out []*AuthorizationPolicy
	for i := range in {
		ap := &in[i]
		if ap.DeletionTimestamp != nil {
			continue
		}
		out = append(out, &AuthorizationPolicy{Name: ap.Name, Namespace: ap.Namespace, Generation: ap.Generation, Spec: ap.Spec.DeepCopy()})
	}
	slices.SortFunc(out, func(a, b *AuthorizationPolicy) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Package mesh is the control plane's model of the mesh: the meshed services,
// their endpoints and the policies that apply to them, resolved and sorted,
// with nothing left to look up. The translator reads it; Build makes it from
// the Kubernetes objects the operator watches.
package mesh

import (
	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// Model is the whole mesh at one moment. It is never modified after Build
// returns it: a change builds a new Model.
type Model struct {
	// Settings are the mesh-wide settings from the skein-config ConfigMap.
	Settings meshconfig.Settings
	// ClusterDomain is the DNS suffix of Services, "cluster.local" unless set.
	ClusterDomain string
	// Services are the meshed services, sorted by namespace then name.
	Services []*Service
	// AuthorizationPolicies are the authorization policies, sorted by
	// namespace then name. A policy with no targetRef applies to every
	// service of its namespace.
	AuthorizationPolicies []*AuthorizationPolicy
}

// Service is one MeshService joined with its Kubernetes Service.
type Service struct {
	// Name and Namespace are the MeshService's.
	Name, Namespace string
	// ServiceName is the Kubernetes Service's name (the MeshService's
	// serviceRef, usually the same name).
	ServiceName string
	// Host is the Service's fully qualified name, such as
	// "catalog.shop.svc.cluster.local".
	Host string
	// ClusterIPs are the Service's cluster IPs; empty for a headless Service.
	ClusterIPs []string
	// Ports are the meshed ports, sorted by number.
	Ports []Port
	// Subsets are the MeshService's subsets, sorted by name.
	Subsets []Subset
	// ExportTo is the MeshService's spec.exportTo as written: namespace
	// names, "." or "*"; empty means every namespace.
	ExportTo []string
	// MTLSMode is STRICT, PERMISSIVE or DISABLED.
	MTLSMode meshv1alpha1.MTLSMode
	// Endpoints are the Service's endpoints from its EndpointSlices, ready
	// or not, sorted by IP.
	Endpoints []Endpoint
	// Policies are the TrafficPolicies in force for this service, at most
	// one per port plus one service-wide (Port 0), already resolved for
	// conflicts (the older policy wins a claim). Sorted by Port.
	Policies []*TrafficPolicy
	// Generation is the MeshService's metadata.generation.
	Generation int64
}

// Port is one meshed port of a service.
type Port struct {
	// Number is the Service port.
	Number int32
	// Name is the MeshService port's name, else the Service port's name; may be empty.
	Name string
	// Protocol is HTTP, HTTP2, GRPC, TCP or AUTO.
	Protocol meshv1alpha1.Protocol
	// TargetPort is the Service port's targetPort when it is a number,
	// 0 when it names a container port (the endpoints then carry the number).
	TargetPort int32
}

// Subset is a named group of the service's pods.
type Subset struct {
	// Name is the subset's name.
	Name string
	// Labels select the subset's pods, on top of the Service's selector.
	Labels map[string]string
}

// Endpoint is one address behind a service.
type Endpoint struct {
	// IP is the endpoint's address.
	IP string
	// Ports maps a service port number to the port this endpoint listens on
	// for it. A service port missing here is not served by this endpoint.
	Ports map[int32]int32
	// Ready is the EndpointSlice's ready condition (serving and not terminating).
	Ready bool
	// Pod is the name of the pod behind the endpoint, in the service's
	// namespace; empty when the endpoint is not a pod.
	Pod string
	// ServiceAccount is the pod's service account; empty when unknown.
	ServiceAccount string
	// Labels are the pod's labels, for subset membership; nil when unknown.
	Labels map[string]string
	// Node is the name of the node the endpoint runs on.
	Node string
	// Region, Zone and SubZone come from the node's topology.kubernetes.io/region
	// and topology.kubernetes.io/zone labels (SubZone from topology.skein.io/subzone).
	Region, Zone, SubZone string
}

// TrafficPolicy is a TrafficPolicy in force for a service (or one of its ports).
type TrafficPolicy struct {
	// Name and Namespace are the policy's.
	Name, Namespace string
	// Generation is the policy's metadata.generation.
	Generation int64
	// Port is the target port, 0 for every port.
	Port int32
	// Spec is the policy's spec, as accepted by the API server.
	Spec *meshv1alpha1.TrafficPolicySpec
}

// AuthorizationPolicy is an authorization policy and the services it targets.
type AuthorizationPolicy struct {
	// Name and Namespace are the policy's.
	Name, Namespace string
	// Generation is the policy's metadata.generation.
	Generation int64
	// Spec is the policy's spec, as accepted by the API server.
	Spec *meshv1alpha1.AuthorizationPolicySpec
}

// Proxy is one connected proxy as the translator sees it: which pod it runs
// in, or none for a proxyless client such as a gRPC application using
// grpc-go's xds resolver.
type Proxy struct {
	// ID is the xDS node ID, "sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local".
	ID string
	// Namespace is the namespace the proxy's workload runs in; it decides
	// which services the proxy may see (their exportTo).
	Namespace string
	// Pod is the pod's name, empty for a proxyless client without a pod.
	Pod string
	// IP is the pod's IP, empty when unknown.
	IP string
}

// ObjectRef names an object whose content went into a proxy's config, so
// that its status can count the proxies it affects.
type ObjectRef struct {
	// Kind is MeshService, TrafficPolicy or AuthorizationPolicy.
	Kind string
	// Namespace and Name are the object's.
	Namespace, Name string
	// Generation is the generation whose content was used.
	Generation int64
}

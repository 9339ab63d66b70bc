package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Protocol is the application protocol of a meshed port.
//
// +kubebuilder:validation:Enum=HTTP;HTTP2;GRPC;TCP;AUTO
type Protocol string

// Protocols a MeshService port may declare.
const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTP2 Protocol = "HTTP2"
	ProtocolGRPC  Protocol = "GRPC"
	ProtocolTCP   Protocol = "TCP"
	// ProtocolAuto lets the proxy detect HTTP/1, HTTP/2 and TLS from the first bytes.
	ProtocolAuto Protocol = "AUTO"
)

// MTLSMode says whether a service's proxies accept plaintext.
//
// +kubebuilder:validation:Enum=STRICT;PERMISSIVE;DISABLED
type MTLSMode string

// mTLS modes.
const (
	// MTLSStrict accepts only mutual TLS from meshed callers.
	MTLSStrict MTLSMode = "STRICT"
	// MTLSPermissive accepts mutual TLS and plaintext, for migrating callers into the mesh.
	MTLSPermissive MTLSMode = "PERMISSIVE"
	// MTLSDisabled accepts only plaintext.
	MTLSDisabled MTLSMode = "DISABLED"
)

// MeshServiceSpec puts a Kubernetes Service into the mesh.
//
// +kubebuilder:validation:XValidation:rule="!has(self.exportTo) || !self.exportTo.exists(n, n == '*') || self.exportTo.size() == 1",message="'*' already exports to every namespace and cannot be combined with other entries",fieldPath=".exportTo"
type MeshServiceSpec struct {
	// serviceRef names the Service, in the MeshService's namespace, whose
	// pods this MeshService meshes. Defaults to the Service with the same
	// name as the MeshService.
	// +optional
	ServiceRef *LocalServiceReference `json:"serviceRef,omitempty"`

	// ports lists the Service's ports to mesh and their protocols. When
	// empty, every port of the Service is meshed with protocol AUTO.
	// +optional
	// +listType=map
	// +listMapKey=port
	// +kubebuilder:validation:MaxItems=64
	Ports []MeshServicePort `json:"ports,omitempty"`

	// mtls sets how the service's proxies accept connections. Defaults to
	// mode STRICT.
	// +optional
	// +kubebuilder:default={mode: STRICT}
	MTLS *MTLSSettings `json:"mtls,omitempty"`

	// subsets names groups of the service's pods by label, for weighted
	// splits and canaries in TrafficPolicy backends.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Subsets []Subset `json:"subsets,omitempty"`

	// exportTo lists the namespaces whose workloads may call this service:
	// namespace names, "." for the MeshService's own namespace, or "*" for
	// every namespace. Defaults to every namespace.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^(\*|\.|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$`
	ExportTo []string `json:"exportTo,omitempty"`
}

// LocalServiceReference names a Service in the referring object's namespace.
type LocalServiceReference struct {
	// name is the Service's name.
	// +required
	Name ObjectName `json:"name"`
}

// MeshServicePort declares how one port of the Service is meshed.
type MeshServicePort struct {
	// port is the Service port number.
	// +required
	Port PortNumber `json:"port"`

	// name is a label for the port in metrics and status. Defaults to the
	// Service port's name.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// protocol is the application protocol spoken on the port. AUTO detects
	// HTTP/1, HTTP/2 and TLS from the first bytes of each connection. Defaults
	// to AUTO.
	// +optional
	// +kubebuilder:default=AUTO
	Protocol Protocol `json:"protocol,omitempty"`
}

// MTLSSettings sets how a service's proxies accept connections.
type MTLSSettings struct {
	// mode is STRICT (mutual TLS only), PERMISSIVE (mutual TLS or plaintext)
	// or DISABLED (plaintext only). Defaults to STRICT.
	// +optional
	// +kubebuilder:default=STRICT
	Mode MTLSMode `json:"mode,omitempty"`
}

// Subset is a named group of the service's pods.
type Subset struct {
	// name identifies the subset in TrafficPolicy backends, such as "v1" or "canary".
	// +required
	Name ObjectName `json:"name"`

	// labels select the subset's pods, in addition to the Service's selector.
	// +required
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=16
	Labels map[string]string `json:"labels"`
}

// MeshServiceStatus is the observed state of a MeshService.
type MeshServiceStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions are Accepted, ResolvedRefs and Programmed.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// pods is the number of running pods the Service selects.
	// +optional
	Pods int32 `json:"pods,omitempty"`

	// subsets reports how many pods each subset selects.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Subsets []SubsetStatus `json:"subsets,omitempty"`

	// identities are the SPIFFE IDs the service's pods run as, one per
	// service account, in the mesh's current trust domain.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	Identities []string `json:"identities,omitempty"`

	// unmeshedPods is the number of the Service's live pods that should have
	// the Skein proxy and do not: pods that injection covers (their namespace
	// or the pod itself has skein.io/inject: enabled) but that were created
	// without the sidecar, typically while the injection webhook was
	// unreachable. Each also has a Warning Event Unmeshed. 0 when omitted.
	// +optional
	UnmeshedPods int32 `json:"unmeshedPods,omitempty"`

	// proxies counts the connected proxies whose configuration this object
	// affects, and how many of them run its current generation. Omitted
	// until the control plane has reported.
	// +optional
	Proxies *ProxyCounts `json:"proxies,omitempty"`
}

// SubsetStatus reports one subset.
type SubsetStatus struct {
	// name is the subset's name.
	// +required
	Name string `json:"name"`

	// pods is the number of running pods the subset selects.
	// +optional
	Pods int32 `json:"pods"`
}

// MeshService puts a Kubernetes Service into the Skein mesh: which ports are
// meshed with which protocol, whether mutual TLS is required, which subsets
// of its pods policies can address, and which namespaces may call it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=msvc,categories=skein
// +kubebuilder:printcolumn:name="Pods",type=integer,JSONPath=`.status.pods`
// +kubebuilder:printcolumn:name="Unmeshed",type=integer,JSONPath=`.status.unmeshedPods`,priority=1
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="ResolvedRefs",type=string,JSONPath=`.status.conditions[?(@.type=="ResolvedRefs")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="ResolvedRefs")].reason`,priority=1
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.proxies.summary`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the MeshService.
	// +required
	Spec MeshServiceSpec `json:"spec"`

	// status is the observed state of the MeshService.
	// +optional
	Status MeshServiceStatus `json:"status,omitempty"`
}

// ServiceName returns the name of the Service behind the MeshService.
func (m *MeshService) ServiceName() string {
	if m.Spec.ServiceRef != nil && m.Spec.ServiceRef.Name != "" {
		return string(m.Spec.ServiceRef.Name)
	}
	return m.Name
}

// ExportedTo reports whether workloads in namespace ns may call the service.
func (m *MeshService) ExportedTo(ns string) bool {
	if len(m.Spec.ExportTo) == 0 {
		return true
	}
	for _, e := range m.Spec.ExportTo {
		if e == "*" || e == ns || (e == "." && ns == m.Namespace) {
			return true
		}
	}
	return false
}

// HasSubset reports whether the MeshService declares the named subset.
func (m *MeshService) HasSubset(name string) bool {
	for _, s := range m.Spec.Subsets {
		if string(s.Name) == name {
			return true
		}
	}
	return false
}

// +kubebuilder:object:root=true

// MeshServiceList is a list of MeshServices.
type MeshServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshService `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MeshService{}, &MeshServiceList{})
}

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthorizationAction is what a matching rule does to a request.
//
// +kubebuilder:validation:Enum=ALLOW;DENY;AUDIT
type AuthorizationAction string

// Authorization actions.
const (
	// ActionAllow lets matching requests through.
	ActionAllow AuthorizationAction = "ALLOW"
	// ActionDeny refuses matching requests; DENY policies are evaluated before ALLOW ones.
	ActionDeny AuthorizationAction = "DENY"
	// ActionAudit logs matching requests and changes nothing else.
	ActionAudit AuthorizationAction = "AUDIT"
)

// AuthorizationPolicySpec decides which callers may reach a service. Policies
// combine as in Istio: a request matching any DENY policy is refused; else,
// if any ALLOW policy applies to the workload, the request must match one;
// else the mesh's default authorization decides.
type AuthorizationPolicySpec struct {
	// targetRef names the MeshService, in this namespace, the policy protects.
	// Unset protects every meshed workload in the namespace. A port in the
	// reference narrows the policy to that port.
	// +optional
	TargetRef *PolicyTargetReference `json:"targetRef,omitempty"`

	// action is ALLOW, DENY or AUDIT. Defaults to ALLOW.
	// +optional
	// +kubebuilder:default=ALLOW
	Action AuthorizationAction `json:"action,omitempty"`

	// rules are alternatives: a request matching any rule matches the policy.
	// With no rules an ALLOW policy matches nothing, so it denies every
	// request to its target.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Rules []AuthorizationRule `json:"rules,omitempty"`
}

// AuthorizationRule matches a request when its from, to and when all match.
// An empty section matches every request.
type AuthorizationRule struct {
	// from lists alternative callers.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	From []Source `json:"from,omitempty"`

	// to lists alternative operations.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	To []Operation `json:"to,omitempty"`

	// when lists conditions that must all hold.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	When []Condition `json:"when,omitempty"`
}

// Principal is a caller's SPIFFE ID pattern: a full ID such as
// "spiffe://cluster.local/ns/shop/sa/web", a prefix ending in "*" such as
// "spiffe://cluster.local/ns/shop/*", a suffix starting with "*" such as
// "*/sa/web", or "*" for any authenticated caller.
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:XValidation:rule="self == '*' || (self.startsWith('spiffe://') && self.size() > 9 && !self.substring(0, self.size() - 1).contains('*')) || (self.startsWith('*') && !self.substring(1).contains('*'))",message="must be '*', start with 'spiffe://' (a '*' may end it), or be '*' followed by a suffix"
type Principal string

// ServiceAccountName is "name", a service account in the policy's namespace,
// or "namespace/name".
//
// +kubebuilder:validation:MaxLength=317
// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
type ServiceAccountName string

// CIDR is an IPv4 or IPv6 address block such as "10.0.0.0/8" or "fd00::/8".
//
// +kubebuilder:validation:MaxLength=64
// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 10.0.0.0/8 or fd00::/8"
type CIDR string

// Source matches the caller; it matches when every field set matches.
//
// +kubebuilder:validation:MinProperties=1
type Source struct {
	// principals match the caller's mTLS identity.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Principals []Principal `json:"principals,omitempty"`

	// namespaces match the caller's namespace, taken from its identity.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Namespaces []ObjectName `json:"namespaces,omitempty"`

	// serviceAccounts match the caller's service account, taken from its identity.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	ServiceAccounts []ServiceAccountName `json:"serviceAccounts,omitempty"`

	// ipBlocks match the caller's IP address.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	IPBlocks []CIDR `json:"ipBlocks,omitempty"`
}

// Operation matches what the request asks for; it matches when every field
// set matches.
//
// +kubebuilder:validation:MinProperties=1
type Operation struct {
	// ports match the port the request arrived on.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Ports []PortNumber `json:"ports,omitempty"`

	// methods match the HTTP method.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	Methods []HTTPMethod `json:"methods,omitempty"`

	// paths match the request path, exactly or by prefix.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(p, !has(p.regex))",message="authorization paths match by exact or prefix only"
	Paths []PathMatch `json:"paths,omitempty"`
}

// Condition matches a request header against a set of values.
type Condition struct {
	// header is the request header.
	// +required
	Header HeaderName `json:"header"`

	// values match when the header equals any of them.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=4096
	Values []string `json:"values"`
}

// AuthorizationPolicyStatus is the observed state of an AuthorizationPolicy.
type AuthorizationPolicyStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions are Accepted, ResolvedRefs and Programmed.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// proxies counts the connected proxies whose configuration this object
	// affects, and how many of them run its current generation. Omitted
	// until the control plane has reported.
	// +optional
	Proxies *ProxyCounts `json:"proxies,omitempty"`
}

// AuthorizationPolicy allows, denies or audits requests to a MeshService (or
// to every meshed workload of its namespace) by caller identity, namespace,
// service account and IP, by port, method and path, and by headers.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=authz,categories=skein
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="ResolvedRefs",type=string,JSONPath=`.status.conditions[?(@.type=="ResolvedRefs")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.proxies.summary`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the AuthorizationPolicy.
	// +required
	Spec AuthorizationPolicySpec `json:"spec"`

	// status is the observed state of the AuthorizationPolicy.
	// +optional
	Status AuthorizationPolicyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AuthorizationPolicyList is a list of AuthorizationPolicies.
type AuthorizationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthorizationPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AuthorizationPolicy{}, &AuthorizationPolicyList{})
}

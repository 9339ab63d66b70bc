package v1alpha1

// Duration is a length of time in Go's notation restricted to whole hours,
// minutes, seconds and milliseconds, as the Gateway API writes it: "10s",
// "1m30s", "250ms".
//
// +kubebuilder:validation:Pattern=`^([0-9]{1,5}(h|m|s|ms)){1,4}$`
// +kubebuilder:validation:MaxLength=32
type Duration string

// PositiveDuration is a Duration longer than zero.
//
// +kubebuilder:validation:Pattern=`^([0-9]{1,5}(h|m|s|ms)){1,4}$`
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || duration(self) > duration('0s')",message="must be longer than zero"
type PositiveDuration string

// Percent is a whole percentage, 0 to 100.
//
// +kubebuilder:validation:Minimum=0
// +kubebuilder:validation:Maximum=100
type Percent int32

// PortNumber is a TCP port number.
//
// +kubebuilder:validation:Minimum=1
// +kubebuilder:validation:Maximum=65535
type PortNumber int32

// ObjectName is the name of a Kubernetes object in the DNS-1123 label form
// that Services use.
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type ObjectName string

// HTTPMethod is an HTTP request method.
//
// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;DELETE;CONNECT;OPTIONS;TRACE;PATCH
type HTTPMethod string

// TargetKind is the kind of object a policy attaches to.
//
// +kubebuilder:validation:Enum=MeshService
type TargetKind string

// TargetKindMeshService is the only kind policies attach to today.
const TargetKindMeshService TargetKind = "MeshService"

// PolicyTargetReference names the MeshService, in the policy's namespace, that
// a policy applies to.
type PolicyTargetReference struct {
	// kind is the kind of the target. Defaults to MeshService, the only kind
	// supported today.
	// +optional
	// +kubebuilder:default=MeshService
	Kind TargetKind `json:"kind,omitempty"`

	// name is the name of the target MeshService in the policy's namespace.
	// +required
	Name ObjectName `json:"name"`

	// port narrows the policy to one port of the target. When unset the policy
	// applies to every port; a policy with a port takes precedence over one
	// without for that port.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
}

// ServiceReference names a MeshService, in the referring object's namespace
// unless namespace is set.
type ServiceReference struct {
	// name is the MeshService's name.
	// +required
	Name ObjectName `json:"name"`

	// namespace is the MeshService's namespace. Defaults to the namespace of
	// the referring object. A MeshService in another namespace must be
	// exported to the referring namespace (spec.exportTo).
	// +optional
	Namespace ObjectName `json:"namespace,omitempty"`
}

// PathMatch matches a request path. Exactly one of exact, prefix or regex is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.exact), has(self.prefix), has(self.regex)].filter(x, x).size() == 1",message="set exactly one of exact, prefix or regex"
type PathMatch struct {
	// exact matches a path equal to this value. It starts with "/".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="must start with '/'"
	Exact *string `json:"exact,omitempty"`

	// prefix matches a path that starts with this value, segment by segment:
	// "/api" matches "/api" and "/api/users" but not "/apis". It starts with "/".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="must start with '/'"
	Prefix *string `json:"prefix,omitempty"`

	// regex matches a path that matches this RE2 regular expression as a whole.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Regex *string `json:"regex,omitempty"`
}

// HeaderName is an HTTP header name.
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_|~]+$`
type HeaderName string

// HeaderMatch matches an HTTP header (or, in queryParams, a query parameter)
// by name. Exactly one of exact, prefix, regex or present is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.exact), has(self.prefix), has(self.regex), has(self.present)].filter(x, x).size() == 1",message="set exactly one of exact, prefix, regex or present"
type HeaderMatch struct {
	// name is the header or query parameter name. Header names match without
	// regard to case.
	// +required
	Name HeaderName `json:"name"`

	// exact matches a value equal to this one.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Exact *string `json:"exact,omitempty"`

	// prefix matches a value that starts with this one.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Prefix *string `json:"prefix,omitempty"`

	// regex matches a value that matches this RE2 regular expression as a whole.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Regex *string `json:"regex,omitempty"`

	// present, when true, matches any request that carries the header at all;
	// when false, any request that does not.
	// +optional
	Present *bool `json:"present,omitempty"`
}

// ProxyCounts says how many connected proxies an object's configuration
// reaches and how many of them have applied its current generation.
type ProxyCounts struct {
	// total is the number of connected proxies whose configuration this
	// object affects.
	// +required
	Total int32 `json:"total"`

	// synced is how many of them acknowledged (ACKed) a configuration built
	// from the object's current generation.
	// +required
	Synced int32 `json:"synced"`

	// rejected is how many of them refused (NACKed) their latest configuration.
	// +required
	Rejected int32 `json:"rejected"`

	// summary is "synced/total", for kubectl's columns.
	// +optional
	Summary string `json:"summary,omitempty"`
}

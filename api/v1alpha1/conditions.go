package v1alpha1

// Condition types shared by every Skein object. They follow the Gateway API's
// meaning: Accepted says the spec is valid and in force, ResolvedRefs that
// everything it names exists, Programmed that the proxies run it.
const (
	// ConditionAccepted is True when the object is valid and not overridden by another.
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs is True when every object this one refers to exists and is usable.
	ConditionResolvedRefs = "ResolvedRefs"
	// ConditionProgrammed is True when every affected proxy runs the configuration.
	ConditionProgrammed = "Programmed"
)

// Reasons for the Accepted condition.
const (
	// ReasonAccepted: the object is valid and in force.
	ReasonAccepted = "Accepted"
	// ReasonInvalid: the object passed the API server's checks but cannot be used
	// as written, for example a regular expression that RE2 does not accept.
	ReasonInvalid = "Invalid"
	// ReasonConflicted: an older TrafficPolicy already claims the same service and port.
	ReasonConflicted = "Conflicted"
)

// Reasons for the ResolvedRefs condition.
const (
	// ReasonResolvedRefs: every reference resolved.
	ReasonResolvedRefs = "ResolvedRefs"
	// ReasonServiceNotFound: the Kubernetes Service behind a MeshService does not exist.
	ReasonServiceNotFound = "ServiceNotFound"
	// ReasonServiceHasNoSelector: the Service selects no pods by label, so the mesh cannot find its workloads.
	ReasonServiceHasNoSelector = "ServiceHasNoSelector"
	// ReasonPortNotFound: a port named in the spec is not a port of the Service.
	ReasonPortNotFound = "PortNotFound"
	// ReasonSubsetHasNoPods: a subset's labels select no pod of the Service.
	ReasonSubsetHasNoPods = "SubsetHasNoPods"
	// ReasonTargetNotFound: the MeshService named by targetRef does not exist.
	ReasonTargetNotFound = "TargetNotFound"
	// ReasonBackendNotFound: a route backend or failover service names a MeshService that does not exist.
	ReasonBackendNotFound = "BackendNotFound"
	// ReasonSubsetNotFound: a backend names a subset its MeshService does not declare.
	ReasonSubsetNotFound = "SubsetNotFound"
	// ReasonNotExported: a backend's MeshService is not exported to the policy's namespace.
	ReasonNotExported = "NotExported"
)

// Reasons for the Programmed condition.
const (
	// ReasonPending: the configuration has not been confirmed by the proxies yet.
	ReasonPending = "Pending"
	// ReasonProgrammed: every affected proxy acknowledged the configuration.
	ReasonProgrammed = "Programmed"
)

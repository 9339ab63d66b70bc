package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The CEL rules that compare two durations first check that both match
// Duration's pattern, so that a malformed duration is reported once, by the
// pattern on its own field, and not also as a conversion error on the object
// that holds the rule.

// TrafficPolicySpec is how calls to one MeshService are routed and protected.
// The sections other than routes apply to every route; a route may override
// timeouts, retries and faultInjection for itself.
//
// +kubebuilder:validation:XValidation:rule="!has(self.retries) || !has(self.retries.perTryTimeout) || !has(self.timeouts) || !has(self.timeouts.request) || !self.retries.perTryTimeout.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || !self.timeouts.request.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || duration(self.retries.perTryTimeout) <= duration(self.timeouts.request)",message="retries.perTryTimeout must not be longer than timeouts.request",fieldPath=".retries.perTryTimeout"
// +kubebuilder:validation:XValidation:rule="!has(self.failover) || has(self.outlierDetection) || has(self.healthCheck)",message="failover needs outlierDetection or healthCheck, which decide when endpoints are unhealthy",fieldPath=".failover"
type TrafficPolicySpec struct {
	// targetRef names the MeshService, in this namespace, whose callers this
	// policy governs, and optionally one of its ports.
	// +required
	TargetRef PolicyTargetReference `json:"targetRef"`

	// routes are tried in order; the first whose matches fit a request
	// routes it. A request that no route matches goes to the target service.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Routes []Route `json:"routes,omitempty"`

	// timeouts bound requests to the service. Unset means no request timeout
	// and the proxy's idle timeout of one hour.
	// +optional
	Timeouts *Timeouts `json:"timeouts,omitempty"`

	// retries retries failed requests. Unset means no retries.
	// +optional
	Retries *RetryPolicy `json:"retries,omitempty"`

	// circuitBreaker caps the connections and requests each caller's proxy
	// sends to the service. Unset means Envoy's defaults (1024 of each).
	// +optional
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`

	// outlierDetection ejects endpoints that keep failing. Unset means no
	// ejection.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`

	// healthCheck actively probes the service's endpoints. Unset means only
	// Kubernetes readiness decides which endpoints receive traffic.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// loadBalancer picks an endpoint for each request. Unset means
	// LEAST_REQUEST.
	// +optional
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`

	// faultInjection delays or fails a share of requests, for testing how
	// callers cope. Unset means no faults.
	// +optional
	FaultInjection *FaultInjection `json:"faultInjection,omitempty"`

	// failover says where traffic goes when the service's nearby endpoints
	// are unhealthy. Unset means all endpoints are equal.
	// +optional
	Failover *Failover `json:"failover,omitempty"`
}

// Route sends the requests that match it to weighted backends.
//
// +kubebuilder:validation:XValidation:rule="!has(self.retries) || !has(self.retries.perTryTimeout) || !has(self.timeouts) || !has(self.timeouts.request) || !self.retries.perTryTimeout.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || !self.timeouts.request.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || duration(self.retries.perTryTimeout) <= duration(self.timeouts.request)",message="retries.perTryTimeout must not be longer than timeouts.request",fieldPath=".retries.perTryTimeout"
type Route struct {
	// name labels the route in metrics, logs and status.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// matches are alternatives: a request that fits any of them takes the
	// route. Empty matches every request.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Matches []RouteMatch `json:"matches,omitempty"`

	// backends receive the route's requests in proportion to their weights.
	// Empty sends them to the target service.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.size() == 0 || self.exists(b, !has(b.weight) || b.weight > 0)",message="at least one backend needs a weight above zero"
	Backends []Backend `json:"backends,omitempty"`

	// timeouts overrides the policy's timeouts for this route.
	// +optional
	Timeouts *Timeouts `json:"timeouts,omitempty"`

	// retries overrides the policy's retries for this route.
	// +optional
	Retries *RetryPolicy `json:"retries,omitempty"`

	// faultInjection overrides the policy's faultInjection for this route.
	// +optional
	FaultInjection *FaultInjection `json:"faultInjection,omitempty"`
}

// RouteMatch is a set of conditions that a request meets when all of them hold.
type RouteMatch struct {
	// path matches the request path. Unset matches every path.
	// +optional
	Path *PathMatch `json:"path,omitempty"`

	// method matches the request method. Unset matches every method.
	// +optional
	Method *HTTPMethod `json:"method,omitempty"`

	// headers must all match.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Headers []HeaderMatch `json:"headers,omitempty"`

	// queryParams must all match; names are case sensitive.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	QueryParams []HeaderMatch `json:"queryParams,omitempty"`
}

// Backend is a destination of a route: a MeshService, or one subset of it.
type Backend struct {
	// name is the MeshService. Defaults to the policy's target.
	// +optional
	Name ObjectName `json:"name,omitempty"`

	// namespace is the MeshService's namespace. Defaults to the policy's
	// namespace. The service must be exported to the policy's namespace.
	// +optional
	Namespace ObjectName `json:"namespace,omitempty"`

	// subset is one of the MeshService's subsets. Unset means all its pods.
	// +optional
	Subset ObjectName `json:"subset,omitempty"`

	// port is the service port to call. Defaults to the port the request
	// arrived on.
	// +optional
	Port *PortNumber `json:"port,omitempty"`

	// weight is the backend's share of the route's requests, relative to the
	// other backends. Zero sends it none. Defaults to 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	Weight *int32 `json:"weight,omitempty"`
}

// Timeouts bound a request.
//
// +kubebuilder:validation:MinProperties=1
type Timeouts struct {
	// request is how long the whole request may take, retries included,
	// until the response headers arrive. Unset means no limit.
	// +optional
	Request *Duration `json:"request,omitempty"`

	// idle is how long a connection or stream may stay without traffic
	// before the proxy closes it. Unset means one hour.
	// +optional
	Idle *Duration `json:"idle,omitempty"`
}

// RetryOn is a condition under which a request is retried.
//
// HTTP: 5xx, gateway-error (502, 503, 504), reset, connect-failure,
// retriable-4xx (409), refused-stream. gRPC, by response status: cancelled,
// deadline-exceeded, internal, resource-exhausted, unavailable.
//
// +kubebuilder:validation:Enum="5xx";gateway-error;reset;connect-failure;retriable-4xx;refused-stream;cancelled;deadline-exceeded;internal;resource-exhausted;unavailable
type RetryOn string

// RetryPolicy retries failed requests.
type RetryPolicy struct {
	// attempts is the most times a request is retried after its first try,
	// up to 10. Defaults to 2.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Attempts *int32 `json:"attempts,omitempty"`

	// retryOn lists the failures worth a retry. Defaults to connect-failure,
	// refused-stream, unavailable, cancelled and retriable-4xx, the ones that
	// are safe to retry whatever the method.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=11
	RetryOn []RetryOn `json:"retryOn,omitempty"`

	// perTryTimeout bounds each try, the first included. It may not be longer
	// than timeouts.request. Unset means each try may use what is left of the
	// request timeout.
	// +optional
	PerTryTimeout *PositiveDuration `json:"perTryTimeout,omitempty"`

	// backoff spaces out retries. Unset means a 25ms base and a 250ms cap.
	// +optional
	Backoff *RetryBackoff `json:"backoff,omitempty"`

	// budget caps retries as a share of active requests, so that retries
	// cannot multiply load on a struggling service. Unset means 20%.
	// +optional
	Budget *RetryBudget `json:"budget,omitempty"`
}

// RetryBackoff is an exponential backoff with full jitter.
//
// +kubebuilder:validation:XValidation:rule="!has(self.baseInterval) || !has(self.maxInterval) || !self.baseInterval.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || !self.maxInterval.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || duration(self.baseInterval) <= duration(self.maxInterval)",message="baseInterval must not be longer than maxInterval",fieldPath=".baseInterval"
type RetryBackoff struct {
	// baseInterval is the first retry's mean wait. Defaults to 25ms.
	// +optional
	BaseInterval *PositiveDuration `json:"baseInterval,omitempty"`

	// maxInterval caps the wait. Defaults to ten times baseInterval.
	// +optional
	MaxInterval *PositiveDuration `json:"maxInterval,omitempty"`
}

// RetryBudget caps concurrent retries relative to active requests.
type RetryBudget struct {
	// percent is the most retries in flight, as a percentage of the requests
	// in flight. Defaults to 20.
	// +optional
	// +kubebuilder:default=20
	Percent *Percent `json:"percent,omitempty"`

	// minRetryConcurrency is the number of retries always allowed in flight,
	// however few requests are active. Defaults to 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	MinRetryConcurrency *int32 `json:"minRetryConcurrency,omitempty"`
}

// CircuitBreaker caps what one caller's proxy sends to the service; requests
// over a limit fail fast with 503 instead of queueing.
//
// +kubebuilder:validation:MinProperties=1
type CircuitBreaker struct {
	// maxConnections caps connections to all endpoints together.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxConnections *int32 `json:"maxConnections,omitempty"`

	// maxPendingRequests caps requests waiting for a connection.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxPendingRequests *int32 `json:"maxPendingRequests,omitempty"`

	// maxRequests caps requests in flight.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRequests *int32 `json:"maxRequests,omitempty"`

	// maxRetries caps retries in flight.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxRetries *int32 `json:"maxRetries,omitempty"`
}

// OutlierDetection ejects endpoints that fail in a row, for a time that grows
// with each ejection.
//
// +kubebuilder:validation:XValidation:rule="has(self.consecutive5xx) || has(self.consecutiveGatewayErrors)",message="set consecutive5xx, consecutiveGatewayErrors or both"
type OutlierDetection struct {
	// consecutive5xx ejects an endpoint after this many 5xx responses (or
	// gRPC failures, or connection errors) in a row.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Consecutive5xx *int32 `json:"consecutive5xx,omitempty"`

	// consecutiveGatewayErrors ejects an endpoint after this many 502, 503
	// or 504 responses (or connection errors) in a row.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`

	// interval is how often ejections are reconsidered. Defaults to 10s.
	// +optional
	// +kubebuilder:default="10s"
	Interval PositiveDuration `json:"interval,omitempty"`

	// baseEjectionTime is the first ejection's length; each further ejection
	// of the same endpoint lasts one more multiple of it. Defaults to 30s.
	// +optional
	// +kubebuilder:default="30s"
	BaseEjectionTime PositiveDuration `json:"baseEjectionTime,omitempty"`

	// maxEjectionPercent is the largest share of endpoints ejected at once.
	// Defaults to 10.
	// +optional
	// +kubebuilder:default=10
	MaxEjectionPercent *Percent `json:"maxEjectionPercent,omitempty"`
}

// HealthCheck probes each endpoint; exactly one of http, grpc or tcp is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.http), has(self.grpc), has(self.tcp)].filter(x, x).size() == 1",message="set exactly one of http, grpc or tcp"
// +kubebuilder:validation:XValidation:rule="!self.timeout.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || !self.interval.matches('^([0-9]{1,5}(h|m|s|ms)){1,4}$') || duration(self.timeout) <= duration(self.interval)",message="timeout, 1s unless set, must not be longer than interval",fieldPath=".timeout"
type HealthCheck struct {
	// http probes with an HTTP GET.
	// +optional
	HTTP *HTTPHealthCheck `json:"http,omitempty"`

	// grpc probes with the gRPC health checking protocol.
	// +optional
	GRPC *GRPCHealthCheck `json:"grpc,omitempty"`

	// tcp probes by opening a connection.
	// +optional
	TCP *TCPHealthCheck `json:"tcp,omitempty"`

	// interval is the time between probes. Defaults to 10s.
	// +optional
	// +kubebuilder:default="10s"
	Interval PositiveDuration `json:"interval,omitempty"`

	// timeout is how long a probe may take. Defaults to 1s.
	// +optional
	// +kubebuilder:default="1s"
	Timeout PositiveDuration `json:"timeout,omitempty"`

	// healthyThreshold is how many passing probes in a row make an unhealthy
	// endpoint healthy again. Defaults to 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	HealthyThreshold int32 `json:"healthyThreshold,omitempty"`

	// unhealthyThreshold is how many failing probes in a row make an endpoint
	// unhealthy. Defaults to 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	UnhealthyThreshold int32 `json:"unhealthyThreshold,omitempty"`
}

// HTTPHealthCheck probes with GET requests.
type HTTPHealthCheck struct {
	// path is the request path. Defaults to "/".
	// +optional
	// +kubebuilder:default="/"
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="must start with '/'"
	Path string `json:"path,omitempty"`

	// expectedStatuses are the response codes that pass. Defaults to 200.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=100
	// +kubebuilder:validation:items:Maximum=599
	ExpectedStatuses []int32 `json:"expectedStatuses,omitempty"`
}

// GRPCHealthCheck probes with grpc.health.v1.Health/Check.
type GRPCHealthCheck struct {
	// service is the service name sent in the check. Empty asks about the
	// server as a whole.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Service string `json:"service,omitempty"`
}

// TCPHealthCheck probes by connecting; a connection that opens passes.
type TCPHealthCheck struct{}

// LoadBalancerType is a load-balancing algorithm.
//
// +kubebuilder:validation:Enum=ROUND_ROBIN;LEAST_REQUEST;RANDOM;RING_HASH;MAGLEV
type LoadBalancerType string

// Load-balancing algorithms.
const (
	LoadBalancerRoundRobin   LoadBalancerType = "ROUND_ROBIN"
	LoadBalancerLeastRequest LoadBalancerType = "LEAST_REQUEST"
	LoadBalancerRandom       LoadBalancerType = "RANDOM"
	LoadBalancerRingHash     LoadBalancerType = "RING_HASH"
	LoadBalancerMaglev       LoadBalancerType = "MAGLEV"
)

// LoadBalancer picks an endpoint for each request.
//
// +kubebuilder:validation:XValidation:rule="(self.type == 'RING_HASH' || self.type == 'MAGLEV') == has(self.hashOn)",message="hashOn is required for RING_HASH and MAGLEV and not allowed otherwise",fieldPath=".hashOn"
type LoadBalancer struct {
	// type is the algorithm: ROUND_ROBIN, LEAST_REQUEST (the less busy of two
	// random endpoints), RANDOM, or the consistent hashes RING_HASH and
	// MAGLEV, which need hashOn.
	// +required
	Type LoadBalancerType `json:"type"`

	// hashOn is what a consistent hash keys on, so that requests with the
	// same key reach the same endpoint.
	// +optional
	HashOn *HashOn `json:"hashOn,omitempty"`
}

// HashOn is the key of a consistent hash; exactly one field is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.header), has(self.cookie), has(self.sourceIP)].filter(x, x).size() == 1",message="set exactly one of header, cookie or sourceIP"
type HashOn struct {
	// header hashes on the value of this request header.
	// +optional
	Header *HeaderName `json:"header,omitempty"`

	// cookie hashes on this cookie, which the proxy sets when it is missing.
	// +optional
	Cookie *HashCookie `json:"cookie,omitempty"`

	// sourceIP, when true, hashes on the caller's IP address.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self",message="must be true when set"
	SourceIP *bool `json:"sourceIP,omitempty"`
}

// HashCookie is a cookie to hash on.
type HashCookie struct {
	// name is the cookie's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_|~]+$`
	Name string `json:"name"`

	// ttl is the lifetime of a cookie the proxy sets. Unset makes it a
	// session cookie.
	// +optional
	TTL *Duration `json:"ttl,omitempty"`
}

// FaultInjection delays or aborts a share of requests.
//
// +kubebuilder:validation:MinProperties=1
type FaultInjection struct {
	// delay holds requests before forwarding them.
	// +optional
	Delay *FaultDelay `json:"delay,omitempty"`

	// abort answers requests with an error instead of forwarding them.
	// +optional
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay holds a share of requests for a fixed time.
type FaultDelay struct {
	// fixedDelay is how long each delayed request is held.
	// +required
	FixedDelay Duration `json:"fixedDelay"`

	// percentage of requests delayed. Defaults to 100.
	// +optional
	// +kubebuilder:default=100
	Percentage *Percent `json:"percentage,omitempty"`
}

// GRPCStatus is a gRPC status code name other than OK.
//
// +kubebuilder:validation:Enum=CANCELLED;UNKNOWN;INVALID_ARGUMENT;DEADLINE_EXCEEDED;NOT_FOUND;ALREADY_EXISTS;PERMISSION_DENIED;RESOURCE_EXHAUSTED;FAILED_PRECONDITION;ABORTED;OUT_OF_RANGE;UNIMPLEMENTED;INTERNAL;UNAVAILABLE;DATA_LOSS;UNAUTHENTICATED
type GRPCStatus string

// FaultAbort answers a share of requests with an error; exactly one of
// httpStatus or grpcStatus is set.
//
// +kubebuilder:validation:XValidation:rule="has(self.httpStatus) != has(self.grpcStatus)",message="set exactly one of httpStatus or grpcStatus"
type FaultAbort struct {
	// httpStatus is the HTTP status answered, 200 to 599.
	// +optional
	// +kubebuilder:validation:Minimum=200
	// +kubebuilder:validation:Maximum=599
	HTTPStatus *int32 `json:"httpStatus,omitempty"`

	// grpcStatus is the gRPC status answered, by name, such as UNAVAILABLE.
	// +optional
	GRPCStatus *GRPCStatus `json:"grpcStatus,omitempty"`

	// percentage of requests aborted. Defaults to 100.
	// +optional
	// +kubebuilder:default=100
	Percentage *Percent `json:"percentage,omitempty"`
}

// Failover orders where requests go when nearby endpoints are unhealthy:
// with locality, the caller's zone first, then its region, then anywhere;
// after all of the target's endpoints, the services listed, in order.
//
// +kubebuilder:validation:XValidation:rule="self.locality || (has(self.services) && self.services.size() > 0)",message="set locality to true, list fallback services, or both"
type Failover struct {
	// locality prefers endpoints in the caller's zone, then its region, then
	// any. Defaults to false.
	// +optional
	// +kubebuilder:default=false
	Locality bool `json:"locality"`

	// services are fallback MeshServices, tried in order once the target has
	// no healthy endpoint.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Services []ServiceReference `json:"services,omitempty"`
}

// TrafficPolicyStatus is the observed state of a TrafficPolicy.
type TrafficPolicyStatus struct {
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

// TrafficPolicy governs calls to one MeshService: routes with matches and
// weighted backends, timeouts, retries, circuit breaking, outlier detection,
// health checks, load balancing, fault injection and failover.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tp,categories=skein
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="ResolvedRefs",type=string,JSONPath=`.status.conditions[?(@.type=="ResolvedRefs")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.proxies.summary`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrafficPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the TrafficPolicy.
	// +required
	Spec TrafficPolicySpec `json:"spec"`

	// status is the observed state of the TrafficPolicy.
	// +optional
	Status TrafficPolicyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// TrafficPolicyList is a list of TrafficPolicies.
type TrafficPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrafficPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TrafficPolicy{}, &TrafficPolicyList{})
}

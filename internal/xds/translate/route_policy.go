package translate

import (
	"strings"
	"sync"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// defaultRetryOn are the failures retried when retries.retryOn is empty:
// the ones safe whatever the method.
var defaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-4xx"

// Istio's retry policy, which a sidecar route gets when its TrafficPolicy
// sets no retries: 2 retries of connection failures, refused streams, gRPC
// UNAVAILABLE and CANCELLED and HTTP 503, each on a host not tried yet.
// The 503 is what a terminating pod's inbound proxy answers
// (upstream_connect_failure) until the caller's EDS drops the pod.
const (
	istioRetryOn          = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
	istioRetries          = 2
	istioRetriableStatus  = 503
	hostSelectionAttempts = 5
	previousHostsName     = "envoy.retry_host_predicates.previous_hosts"
)

var previousHostsAny = sync.OnceValue(func() *anypb.Any { return mustAny(&previoushostsv3.PreviousHostsPredicate{}) })

// previousHosts sets Istio's host selection on a sidecar route's retry
// policy: the previous_hosts predicate, up to 5 re-picks. Proxyless routes
// do without (grpc-go ignores host predicates).
func previousHosts(out *routev3.RetryPolicy) {
	out.RetryHostPredicate = []*routev3.RetryPolicy_RetryHostPredicate{{
		Name:       previousHostsName,
		ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: previousHostsAny()},
	}}
	out.HostSelectionRetryMaxAttempts = hostSelectionAttempts
}

// retryPolicy maps retries; nil when attempts is 0. Unset, a sidecar route
// gets Istio's default policy and a proxyless one none (grpc-go retries
// what never left the client by itself). The API's retryOn names are
// Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on names, which share
// retry_on.
func retryPolicy(rp *meshv1alpha1.RetryPolicy, proxyless bool) *routev3.RetryPolicy {
	if rp == nil {
		if proxyless {
			return nil
		}
		out := &routev3.RetryPolicy{
			RetryOn:              istioRetryOn,
			NumRetries:           wrapperspb.UInt32(istioRetries),
			RetriableStatusCodes: []uint32{istioRetriableStatus},
		}
		previousHosts(out)
		return out
	}
	attempts := orDefault(rp.Attempts, defaultRetries)
	if attempts <= 0 {
		return nil
	}
	on := defaultRetryOn
	if len(rp.RetryOn) > 0 {
		names := make([]string, len(rp.RetryOn))
		for i, r := range rp.RetryOn {
			names[i] = string(r)
		}
		on = strings.Join(names, ",")
	}
	base, maxI := 25*time.Millisecond, time.Duration(0)
	if rp.Backoff != nil {
		if d := duration(string(orDefault(rp.Backoff.BaseInterval, ""))); d != nil {
			base = d.AsDuration()
		}
		if d := duration(string(orDefault(rp.Backoff.MaxInterval, ""))); d != nil {
			maxI = d.AsDuration()
		}
	}
	if maxI == 0 {
		maxI = 10 * base
	}
	out := &routev3.RetryPolicy{
		RetryOn:      on,
		NumRetries:   wrapperspb.UInt32(uint32(attempts)),
		RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(base), MaxInterval: durationpb.New(maxI)},
	}
	out.PerTryTimeout = duration(string(orDefault(rp.PerTryTimeout, "")))
	if !proxyless {
		previousHosts(out)
	}
	return out
}

// hashPolicies maps loadBalancer.hashOn onto the routes' hash_policy.
// grpc-go hashes on headers only; it skips cookie and source IP policies.
func hashPolicies(h *meshv1alpha1.HashOn) []*routev3.RouteAction_HashPolicy {
	switch {
	case h == nil:
		return nil
	case h.Header != nil:
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: strings.ToLower(string(*h.Header))},
		}}}
	case h.Cookie != nil:
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{
			Cookie: &routev3.RouteAction_HashPolicy_Cookie{Name: h.Cookie.Name, Ttl: duration(string(orDefault(h.Cookie.TTL, "")))},
		}}}
	case h.SourceIP != nil && *h.SourceIP:
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
		}}}
	}
	return nil
}

// grpcCodes are the gRPC status codes by name.
var grpcCodes = map[string]uint32{
	"CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
	"ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
	"ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
	"DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

// httpFault maps faultInjection onto the fault filter's per-route config.
func httpFault(f *meshv1alpha1.FaultInjection) *faultv3.HTTPFault {
	out := &faultv3.HTTPFault{}
	if d := f.Delay; d != nil {
		out.Delay = &faultcommonv3.FaultDelay{
			FaultDelaySecifier: &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: durationOr(string(d.FixedDelay), 0)},
			Percentage:         percent(d.Percentage),
		}
	}
	if a := f.Abort; a != nil {
		abort := &faultv3.FaultAbort{Percentage: percent(a.Percentage)}
		switch {
		case a.GRPCStatus != nil:
			abort.ErrorType = &faultv3.FaultAbort_GrpcStatus{GrpcStatus: grpcCodes[string(*a.GRPCStatus)]}
		case a.HTTPStatus != nil:
			abort.ErrorType = &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(*a.HTTPStatus)}
		}
		out.Abort = abort
	}
	return out
}

// percent is a share of requests, 100% when unset.
func percent(p *meshv1alpha1.Percent) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: uint32(orDefault(p, 100)), Denominator: typev3.FractionalPercent_HUNDRED}
}

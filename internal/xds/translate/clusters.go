package translate

import (
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	maglevv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/maglev/v3"
	randomv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/random/v3"
	ringhashv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/ring_hash/v3"
	roundrobinv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/round_robin/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
)

// adsSource is the ConfigSource "over the same ADS stream".
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// outboundCluster is the EDS cluster of one port (and subset) of a service,
// with the port's TrafficPolicy applied.
func outboundCluster(name string, port mesh.Port, spec *meshv1alpha1.TrafficPolicySpec) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		ConnectTimeout:       durationpb.New(connectTimeoutS * time.Second),
		LbPolicy:             clusterv3.Cluster_LEAST_REQUEST,
	}
	c.TypedExtensionProtocolOptions = protocolOptions(port)
	if spec == nil {
		return c
	}
	applyLoadBalancer(c, spec.LoadBalancer)
	c.CircuitBreakers = circuitBreakers(spec.CircuitBreaker, spec.Retries)
	c.OutlierDetection = outlierDetection(spec.OutlierDetection)
	if hc := healthCheck(spec.HealthCheck); hc != nil {
		c.HealthChecks = []*corev3.HealthCheck{hc}
	}
	return c
}

// protocolOptions are the upstream HTTP options of a port's clusters:
// HTTP/2 for GRPC and HTTP2, the caller's protocol for AUTO, Envoy's
// default (HTTP/1.1) otherwise (nil).
func protocolOptions(port mesh.Port) map[string]*anypb.Any {
	switch {
	case isHTTP2(port):
		return map[string]*anypb.Any{http2OptionsKey: http2OptionsAny()}
	case port.Protocol == meshv1alpha1.ProtocolAuto:
		return map[string]*anypb.Any{http2OptionsKey: downstreamOptionsAny()}
	}
	return nil
}

// downstreamOptionsAny makes a cluster use the caller's protocol, packed once.
var downstreamOptionsAny = sync.OnceValue(func() *anypb.Any {
	return mustAny(&upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_UseDownstreamProtocolConfig{
			UseDownstreamProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_UseDownstreamHttpConfig{},
		},
	})
})

// http2OptionsAny is http2Options packed once and shared by every cluster
// (resources are never modified after translation).
var http2OptionsAny = sync.OnceValue(func() *anypb.Any { return mustAny(http2Options()) })

// http2Options makes a cluster speak HTTP/2 (prior knowledge) to its endpoints.
func http2Options() *upstreamhttpv3.HttpProtocolOptions {
	return &upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		},
	}
}

// applyLoadBalancer sets the cluster's lb_policy. grpc-go refuses a cluster
// whose lb_policy is RANDOM or MAGLEV (it knows ROUND_ROBIN, RING_HASH and
// LEAST_REQUEST), so for those lb_policy holds the nearest algorithm grpc-go
// accepts (ROUND_ROBIN, RING_HASH) and load_balancing_policy, which takes
// precedence in Envoy and in grpc-go, lists the asked-for algorithm first
// and that fallback second: Envoy runs RANDOM or MAGLEV, grpc-go skips the
// policy it does not know and runs the fallback.
func applyLoadBalancer(c *clusterv3.Cluster, lb *meshv1alpha1.LoadBalancer) {
	if lb == nil {
		return
	}
	switch lb.Type {
	case meshv1alpha1.LoadBalancerRoundRobin:
		c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
	case meshv1alpha1.LoadBalancerLeastRequest:
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	case meshv1alpha1.LoadBalancerRingHash:
		c.LbPolicy = clusterv3.Cluster_RING_HASH
	case meshv1alpha1.LoadBalancerRandom:
		c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
		c.LoadBalancingPolicy = lbPolicies(&randomv3.Random{}, &roundrobinv3.RoundRobin{})
	case meshv1alpha1.LoadBalancerMaglev:
		c.LbPolicy = clusterv3.Cluster_RING_HASH
		c.LoadBalancingPolicy = lbPolicies(&maglevv3.Maglev{}, &ringhashv3.RingHash{HashFunction: ringhashv3.RingHash_XX_HASH})
	}
}

// lbPolicies is a load_balancing_policy listing policies in order of preference.
func lbPolicies(ps ...proto.Message) *clusterv3.LoadBalancingPolicy {
	out := &clusterv3.LoadBalancingPolicy{}
	for _, p := range ps {
		name := "envoy.load_balancing_policies." + lbPolicyName(p)
		out.Policies = append(out.Policies, &clusterv3.LoadBalancingPolicy_Policy{
			TypedExtensionConfig: &corev3.TypedExtensionConfig{Name: name, TypedConfig: mustAny(p)},
		})
	}
	return out
}

func lbPolicyName(p proto.Message) string {
	switch p.(type) {
	case *randomv3.Random:
		return "random"
	case *maglevv3.Maglev:
		return "maglev"
	case *ringhashv3.RingHash:
		return "ring_hash"
	default:
		return "round_robin"
	}
}

// circuitBreakers maps circuitBreaker (and the retry budget of retries)
// onto the DEFAULT priority's thresholds; nil when neither is set.
func circuitBreakers(cb *meshv1alpha1.CircuitBreaker, retries *meshv1alpha1.RetryPolicy) *clusterv3.CircuitBreakers {
	if cb == nil && retries == nil {
		return nil
	}
	t := &clusterv3.CircuitBreakers_Thresholds{Priority: corev3.RoutingPriority_DEFAULT}
	if cb != nil {
		t.MaxConnections = u32(cb.MaxConnections)
		t.MaxPendingRequests = u32(cb.MaxPendingRequests)
		t.MaxRequests = u32(cb.MaxRequests)
		t.MaxRetries = u32(cb.MaxRetries)
	}
	if retries != nil && (cb == nil || cb.MaxRetries == nil) {
		// The API's retry budget (default 20% of active requests, at least
		// 3) replaces Envoy's fixed max_retries, unless circuitBreaker
		// caps retries itself.
		pct, minC := int32(20), int32(3)
		if b := retries.Budget; b != nil {
			pct = int32(orDefault(b.Percent, meshv1alpha1.Percent(pct)))
			minC = orDefault(b.MinRetryConcurrency, minC)
		}
		t.RetryBudget = &clusterv3.CircuitBreakers_Thresholds_RetryBudget{
			BudgetPercent:       &typev3.Percent{Value: float64(pct)},
			MinRetryConcurrency: wrapperspb.UInt32(uint32(max(minC, 0))),
		}
	}
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{t}}
}

// u32 wraps an optional non-negative count.
func u32(v *int32) *wrapperspb.UInt32Value {
	if v == nil {
		return nil
	}
	return wrapperspb.UInt32(uint32(max(*v, 0)))
}

// outlierDetection maps outlierDetection. Envoy's defaults would also eject
// on success rate and on five 5xx in a row when consecutive5xx is unset;
// both are turned off so that only what the policy says ejects.
func outlierDetection(od *meshv1alpha1.OutlierDetection) *clusterv3.OutlierDetection {
	if od == nil {
		return nil
	}
	out := &clusterv3.OutlierDetection{
		Interval:                           durationOr(string(od.Interval), 10*time.Second),
		BaseEjectionTime:                   durationOr(string(od.BaseEjectionTime), 30*time.Second),
		MaxEjectionPercent:                 wrapperspb.UInt32(uint32(orDefault(od.MaxEjectionPercent, 10))),
		EnforcingSuccessRate:               wrapperspb.UInt32(0),
		EnforcingConsecutive_5Xx:           wrapperspb.UInt32(0),
		EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(0),
	}
	if od.Consecutive5xx != nil {
		out.Consecutive_5Xx = u32(od.Consecutive5xx)
		out.EnforcingConsecutive_5Xx = wrapperspb.UInt32(100)
	}
	if od.ConsecutiveGatewayErrors != nil {
		out.ConsecutiveGatewayFailure = u32(od.ConsecutiveGatewayErrors)
		out.EnforcingConsecutiveGatewayFailure = wrapperspb.UInt32(100)
	}
	return out
}

// healthCheck maps healthCheck onto an Envoy active health check. grpc-go
// ignores health_checks (proxyless clients rely on readiness and outlier
// detection); it does not refuse them.
func healthCheck(hc *meshv1alpha1.HealthCheck) *corev3.HealthCheck {
	if hc == nil {
		return nil
	}
	out := &corev3.HealthCheck{
		Timeout:            durationOr(string(hc.Timeout), time.Second),
		Interval:           durationOr(string(hc.Interval), 10*time.Second),
		HealthyThreshold:   wrapperspb.UInt32(uint32(max(hc.HealthyThreshold, 1))),
		UnhealthyThreshold: wrapperspb.UInt32(3),
	}
	if hc.UnhealthyThreshold > 0 {
		out.UnhealthyThreshold = wrapperspb.UInt32(uint32(hc.UnhealthyThreshold))
	}
	switch {
	case hc.HTTP != nil:
		path := hc.HTTP.Path
		if path == "" {
			path = "/"
		}
		h := &corev3.HealthCheck_HttpHealthCheck{Path: path}
		for _, s := range hc.HTTP.ExpectedStatuses {
			h.ExpectedStatuses = append(h.ExpectedStatuses, &typev3.Int64Range{Start: int64(s), End: int64(s) + 1})
		}
		out.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: h}
	case hc.GRPC != nil:
		out.HealthChecker = &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{ServiceName: hc.GRPC.Service}}
	default:
		// tcp, and the impossible "none set": a connection that opens passes.
		out.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}}
	}
	return out
}

// passthroughCluster forwards to the connection's original destination.
func passthroughCluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 PassthroughCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       durationpb.New(connectTimeoutS * time.Second),
	}
}

// blackHoleCluster has no endpoints, so every connection to it fails.
func blackHoleCluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 BlackHoleCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(connectTimeoutS * time.Second),
	}
}

// inboundCluster reaches the local application at the address and port a
// connection into the pod was addressed to (the pod's IP and the target
// port: ORIGINAL_DST), from 127.0.0.6 (InboundPassthroughSource), which the
// capture rules let through instead of capturing it again; in the
// protocol of the service port p (HTTP/2 for a gRPC server). As Istio
// since 1.10: an app bound to its pod IP is reached, one bound to
// 127.0.0.1 only is not (it would not be reachable without a mesh either).
func inboundCluster(port int32, p mesh.Port) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                          InboundClusterName(port),
		TypedExtensionProtocolOptions: protocolOptions(p),
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:                      clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:                durationpb.New(connectTimeoutS * time.Second),
		UpstreamBindConfig: &corev3.BindConfig{SourceAddress: &corev3.SocketAddress{
			Address:       InboundPassthroughSource,
			PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0},
		}},
	}
}

// mustAny packs a message into an Any, deterministically (RBAC policies are
// a map), so that the same model gives byte-identical resources; it cannot
// fail for the generated types used here.
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(err)
	}
	return a
}

package translate

import (
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
)

// httpService is an HTTP service on port 80 (target 8080) with one endpoint.
func httpService(ns, name, ip, epIP string) *mesh.Service {
	s := newService(ns, name, ip, port(80, "http", meshv1alpha1.ProtocolHTTP, 8080))
	s.Endpoints = []mesh.Endpoint{endpoint(epIP, name+"-0", name, 80, 8080)}
	return s
}

// grpcService is a gRPC service on port 9090 with one endpoint.
func grpcService(ns, name, ip, epIP string) *mesh.Service {
	s := newService(ns, name, ip, port(9090, "grpc", meshv1alpha1.ProtocolGRPC, 9090))
	s.Endpoints = []mesh.Endpoint{endpoint(epIP, name+"-0", name, 9090, 9090)}
	return s
}

// policyScenarios are about each section of a TrafficPolicy.
var policyScenarios = []scenario{
	{
		name:  "timeouts-retries",
		about: "Policy timeouts and retries on every route; the /reports route overrides the request timeout.",
		model: newModel(withPolicy(httpService("shop", "orders", "10.96.1.10", "10.1.1.10"), "orders-resilience", 0, meshv1alpha1.TrafficPolicySpec{
			Timeouts: &meshv1alpha1.Timeouts{Request: ptr[meshv1alpha1.Duration]("2s"), Idle: ptr[meshv1alpha1.Duration]("30s")},
			Retries: &meshv1alpha1.RetryPolicy{
				Attempts: ptr[int32](3), RetryOn: []meshv1alpha1.RetryOn{"5xx", "connect-failure"},
				PerTryTimeout: ptr[meshv1alpha1.PositiveDuration]("500ms"),
				Backoff:       &meshv1alpha1.RetryBackoff{BaseInterval: ptr[meshv1alpha1.PositiveDuration]("50ms")},
			},
			Routes: []meshv1alpha1.Route{{
				Name:     "reports",
				Matches:  []meshv1alpha1.RouteMatch{{Path: &meshv1alpha1.PathMatch{Prefix: ptr("/reports/")}}},
				Timeouts: &meshv1alpha1.Timeouts{Request: ptr[meshv1alpha1.Duration]("10s")},
			}},
		})),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			routes := findVHost(findRouteConfig(r, "80"), "orders.shop.svc.cluster.local:80").GetRoutes()
			if got := routes[0].GetRoute().GetTimeout().AsDuration(); got != 10*time.Second {
				t.Errorf("reports route timeout %v, want its own 10s", got)
			}
			def := routes[1].GetRoute()
			if def.GetTimeout().AsDuration() != 2*time.Second || def.GetIdleTimeout().AsDuration() != 30*time.Second {
				t.Errorf("default route timeouts %v / %v, want 2s / 30s", def.GetTimeout(), def.GetIdleTimeout())
			}
			rp := def.GetRetryPolicy()
			if rp.GetRetryOn() != "5xx,connect-failure" || rp.GetNumRetries().GetValue() != 3 ||
				rp.GetPerTryTimeout().AsDuration() != 500*time.Millisecond || rp.GetRetryBackOff().GetMaxInterval().AsDuration() != 500*time.Millisecond {
				t.Errorf("retry policy %v", rp)
			}
		},
	},
	{
		name:  "circuit-breaker",
		about: "circuitBreaker becomes the DEFAULT thresholds of the service's clusters.",
		model: newModel(withPolicy(httpService("shop", "payments", "10.96.1.20", "10.1.1.20"), "payments-limits", 0, meshv1alpha1.TrafficPolicySpec{
			CircuitBreaker: &meshv1alpha1.CircuitBreaker{MaxConnections: ptr[int32](100), MaxPendingRequests: ptr[int32](10), MaxRequests: ptr[int32](200), MaxRetries: ptr[int32](3)},
		})),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			th := findCluster(r, "outbound|80||payments.shop.svc.cluster.local").GetCircuitBreakers().GetThresholds()
			if len(th) != 1 || th[0].GetMaxConnections().GetValue() != 100 || th[0].GetMaxRequests().GetValue() != 200 {
				t.Errorf("thresholds %v", th)
			}
		},
	},
	{
		name:  "outlier-detection",
		about: "outlierDetection: five 5xx in a row eject for 1m; success-rate and gateway-error ejection stay off.",
		model: newModel(withPolicy(grpcService("shop", "inventory", "10.96.1.30", "10.1.1.30"), "inventory-outliers", 0, meshv1alpha1.TrafficPolicySpec{
			OutlierDetection: &meshv1alpha1.OutlierDetection{Consecutive5xx: ptr[int32](5), Interval: "5s", BaseEjectionTime: "1m", MaxEjectionPercent: ptr[meshv1alpha1.Percent](50)},
		})),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			od := findCluster(r, "outbound|9090||inventory.shop.svc.cluster.local").GetOutlierDetection()
			if od.GetConsecutive_5Xx().GetValue() != 5 || od.GetEnforcingConsecutive_5Xx().GetValue() != 100 ||
				od.GetEnforcingSuccessRate().GetValue() != 0 || od.GetBaseEjectionTime().AsDuration() != time.Minute {
				t.Errorf("outlier detection %v", od)
			}
		},
	},
	{
		name:  "health-checks",
		about: "Active health checks: HTTP with a path and statuses, gRPC with a service name, TCP connect.",
		model: newModel(
			withPolicy(httpService("shop", "hc-http", "10.96.1.40", "10.1.1.40"), "hc-http", 0, meshv1alpha1.TrafficPolicySpec{
				HealthCheck: &meshv1alpha1.HealthCheck{HTTP: &meshv1alpha1.HTTPHealthCheck{Path: "/healthz", ExpectedStatuses: []int32{200, 204}}, Interval: "5s", UnhealthyThreshold: 2},
			}),
			withPolicy(grpcService("shop", "hc-grpc", "10.96.1.41", "10.1.1.41"), "hc-grpc", 0, meshv1alpha1.TrafficPolicySpec{
				HealthCheck: &meshv1alpha1.HealthCheck{GRPC: &meshv1alpha1.GRPCHealthCheck{Service: "inventory.v1.Inventory"}},
			}),
			withPolicy(func() *mesh.Service {
				s := newService("shop", "hc-tcp", "10.96.1.42", port(6379, "redis", meshv1alpha1.ProtocolTCP, 6379))
				s.Endpoints = []mesh.Endpoint{endpoint("10.1.1.42", "hc-tcp-0", "hc-tcp", 6379, 6379)}
				return s
			}(), "hc-tcp", 0, meshv1alpha1.TrafficPolicySpec{
				HealthCheck: &meshv1alpha1.HealthCheck{TCP: &meshv1alpha1.TCPHealthCheck{}, Timeout: "2s", HealthyThreshold: 2},
			}),
		),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			h := findCluster(r, "outbound|80||hc-http.shop.svc.cluster.local").GetHealthChecks()
			if len(h) != 1 || h[0].GetHttpHealthCheck().GetPath() != "/healthz" || len(h[0].GetHttpHealthCheck().GetExpectedStatuses()) != 2 {
				t.Errorf("http health check %v", h)
			}
			if g := findCluster(r, "outbound|9090||hc-grpc.shop.svc.cluster.local").GetHealthChecks(); len(g) != 1 || g[0].GetGrpcHealthCheck().GetServiceName() != "inventory.v1.Inventory" {
				t.Errorf("grpc health check %v", g)
			}
			if c := findCluster(r, "outbound|6379||hc-tcp.shop.svc.cluster.local").GetHealthChecks(); len(c) != 1 || c[0].GetTcpHealthCheck() == nil {
				t.Errorf("tcp health check %v", c)
			}
		},
	},
	{
		name: "load-balancers",
		about: `RING_HASH on header x-user (gRPC: hash_policy on both route configs); MAGLEV with a cookie and RANDOM, each
		with a grpc-go-acceptable lb_policy and the exact algorithm in load_balancing_policy; a service-wide
		ROUND_ROBIN that port 8081's own LEAST_REQUEST policy overrides.`,
		model: newModel(
			withPolicy(grpcService("shop", "sessions", "10.96.1.50", "10.1.1.50"), "sessions-affinity", 0, meshv1alpha1.TrafficPolicySpec{
				LoadBalancer: &meshv1alpha1.LoadBalancer{Type: meshv1alpha1.LoadBalancerRingHash, HashOn: &meshv1alpha1.HashOn{Header: ptr[meshv1alpha1.HeaderName]("X-User")}},
			}),
			withPolicy(httpService("shop", "carts", "10.96.1.51", "10.1.1.51"), "carts-affinity", 0, meshv1alpha1.TrafficPolicySpec{
				LoadBalancer: &meshv1alpha1.LoadBalancer{Type: meshv1alpha1.LoadBalancerMaglev, HashOn: &meshv1alpha1.HashOn{Cookie: &meshv1alpha1.HashCookie{Name: "cart", TTL: ptr[meshv1alpha1.Duration]("1h")}}},
			}),
			withPolicy(httpService("shop", "search", "10.96.1.52", "10.1.1.52"), "search-random", 0, meshv1alpha1.TrafficPolicySpec{
				LoadBalancer: &meshv1alpha1.LoadBalancer{Type: meshv1alpha1.LoadBalancerRandom},
			}),
			withPolicy(withPolicy(func() *mesh.Service {
				s := newService("shop", "api", "10.96.1.53", port(8080, "http", meshv1alpha1.ProtocolHTTP, 8080), port(8081, "admin", meshv1alpha1.ProtocolHTTP, 8081))
				e := endpoint("10.1.1.53", "api-0", "api", 8080, 8080)
				e.Ports[8081] = 8081
				s.Endpoints = []mesh.Endpoint{e}
				return s
			}(), "api-rr", 0, meshv1alpha1.TrafficPolicySpec{
				LoadBalancer: &meshv1alpha1.LoadBalancer{Type: meshv1alpha1.LoadBalancerRoundRobin},
			}), "api-admin-lr", 8081, meshv1alpha1.TrafficPolicySpec{
				LoadBalancer: &meshv1alpha1.LoadBalancer{Type: meshv1alpha1.LoadBalancerLeastRequest},
			}),
		),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			for name, want := range map[string]clusterv3.Cluster_LbPolicy{
				"outbound|9090||sessions.shop.svc.cluster.local": clusterv3.Cluster_RING_HASH,
				"outbound|80||carts.shop.svc.cluster.local":      clusterv3.Cluster_RING_HASH,
				"outbound|80||search.shop.svc.cluster.local":     clusterv3.Cluster_ROUND_ROBIN,
				"outbound|8080||api.shop.svc.cluster.local":      clusterv3.Cluster_ROUND_ROBIN,
				"outbound|8081||api.shop.svc.cluster.local":      clusterv3.Cluster_LEAST_REQUEST,
			} {
				if got := findCluster(r, name).GetLbPolicy(); got != want {
					t.Errorf("%s: lb_policy %v, want %v", name, got, want)
				}
			}
			if p := findCluster(r, "outbound|80||carts.shop.svc.cluster.local").GetLoadBalancingPolicy().GetPolicies(); len(p) != 2 || p[0].GetTypedExtensionConfig().GetName() != "envoy.load_balancing_policies.maglev" {
				t.Errorf("carts load_balancing_policy %v, want maglev then ring_hash", p)
			}
			for _, rc := range []string{"9090", "sessions.shop.svc.cluster.local:9090"} {
				rt := findVHost(findRouteConfig(r, rc), "sessions.shop.svc.cluster.local:9090").GetRoutes()[0]
				if hp := rt.GetRoute().GetHashPolicy(); len(hp) != 1 || hp[0].GetHeader().GetHeaderName() != "x-user" {
					t.Errorf("%s: hash policy %v, want header x-user", rc, hp)
				}
			}
		},
	},
	{
		name: "fault-injection",
		about: `Fault injection: the policy delays 10% by 5s; its "flaky" route aborts half with gRPC UNAVAILABLE.
		The fault filter is in the chains whose routes use it (port 9090, the API listener), not port 80's.`,
		model: newModel(
			withPolicy(grpcService("shop", "ratings", "10.96.1.60", "10.1.1.60"), "ratings-chaos", 0, meshv1alpha1.TrafficPolicySpec{
				FaultInjection: &meshv1alpha1.FaultInjection{Delay: &meshv1alpha1.FaultDelay{FixedDelay: "5s", Percentage: ptr[meshv1alpha1.Percent](10)}},
				Routes: []meshv1alpha1.Route{{
					Name:           "flaky",
					Matches:        []meshv1alpha1.RouteMatch{{Headers: []meshv1alpha1.HeaderMatch{{Name: "x-chaos", Exact: ptr("on")}}}},
					FaultInjection: &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{GRPCStatus: ptr[meshv1alpha1.GRPCStatus]("UNAVAILABLE"), Percentage: ptr[meshv1alpha1.Percent](50)}},
				}},
			}),
			httpService("shop", "web", "10.96.1.61", "10.1.1.61"),
		),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			filters := func(l string) []string {
				var out []string
				for _, fc := range findListener(r, VirtualOutbound).GetFilterChains() {
					if fc.GetName() == l {
						out = httpFilterNames(t, fc.GetFilters()[0].GetTypedConfig())
					}
				}
				return out
			}
			if got := filters("10.96.1.60_9090"); !slices.Equal(got, []string{faultFilter, routerFilter}) {
				t.Errorf("port 9090 chain filters %v, want fault then router", got)
			}
			if got := filters("10.96.1.61_80"); !slices.Equal(got, []string{routerFilter}) {
				t.Errorf("port 80 chain filters %v, want the router only", got)
			}
			if got := httpFilterNames(t, findListener(r, "ratings.shop.svc.cluster.local:9090").GetApiListener().GetApiListener()); !slices.Equal(got, []string{faultFilter, routerFilter}) {
				t.Errorf("API listener filters %v", got)
			}
		},
	},
	{
		name:  "tcp-weighted-split",
		about: "A TCP port whose policy route has weighted backends: tcp_proxy weighted_clusters.",
		model: newModel(withPolicy(func() *mesh.Service {
			s := newService("shop", "db", "10.96.1.70", port(5432, "postgres", meshv1alpha1.ProtocolTCP, 5432))
			s.Subsets = []mesh.Subset{{Name: "primary", Labels: map[string]string{"role": "primary"}}, {Name: "replica", Labels: map[string]string{"role": "replica"}}}
			a, b := endpoint("10.1.1.70", "db-0", "db", 5432, 5432), endpoint("10.1.1.71", "db-1", "db", 5432, 5432)
			a.Labels, b.Labels = map[string]string{"role": "primary"}, map[string]string{"role": "replica"}
			s.Endpoints = []mesh.Endpoint{a, b}
			return s
		}(), "db-split", 0, meshv1alpha1.TrafficPolicySpec{
			Routes: []meshv1alpha1.Route{{Backends: []meshv1alpha1.Backend{{Subset: "primary", Weight: ptr[int32](3)}, {Subset: "replica"}}}},
		})),
		proxy: client,
	},
}

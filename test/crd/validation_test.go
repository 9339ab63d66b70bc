package crd_test

import (
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// TestInvalidObjectsRejected creates invalid objects through the real API
// server and checks that each is refused with an Invalid error that names the
// offending field, and only that field, with a message a user can act on.
func TestInvalidObjectsRejected(t *testing.T) {
	ns := newNamespace(t, "invalid")
	for _, tc := range []struct {
		name    string        // what is wrong
		obj     client.Object // the object to create, in a namespace of the test's
		field   string        // the field path the API server's error must name
		message string        // a fragment of the error message for that field
	}{
		// TrafficPolicy: timeouts and retries.
		{
			name: "perTryTimeout longer than the request timeout",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.Timeouts = &v1.Timeouts{Request: dur("1s")}
				s.Retries = &v1.RetryPolicy{PerTryTimeout: pdur("1s1ms")}
			}),
			field:   "spec.retries.perTryTimeout",
			message: "retries.perTryTimeout must not be longer than timeouts.request",
		},
		{
			name: "perTryTimeout longer than the request timeout in a route",
			obj: route(func(r *v1.Route) {
				r.Timeouts = &v1.Timeouts{Request: dur("500ms")}
				r.Retries = &v1.RetryPolicy{PerTryTimeout: pdur("1s")}
			}),
			field:   "spec.routes[0].retries.perTryTimeout",
			message: "retries.perTryTimeout must not be longer than timeouts.request",
		},
		{
			name:    "11 retry attempts",
			obj:     trafficPolicy(func(s *v1.TrafficPolicySpec) { s.Retries = &v1.RetryPolicy{Attempts: ptr(int32(11))} }),
			field:   "spec.retries.attempts",
			message: "should be less than or equal to 10",
		},
		{
			name:    "unknown retryOn condition",
			obj:     trafficPolicy(func(s *v1.TrafficPolicySpec) { s.Retries = &v1.RetryPolicy{RetryOn: []v1.RetryOn{"4xx"}} }),
			field:   "spec.retries.retryOn[0]",
			message: `Unsupported value: "4xx"`,
		},
		{
			name: "retry budget above 100 percent",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.Retries = &v1.RetryPolicy{Budget: &v1.RetryBudget{Percent: ptr(v1.Percent(101))}}
			}),
			field:   "spec.retries.budget.percent",
			message: "should be less than or equal to 100",
		},
		{
			name: "backoff base interval longer than its cap",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.Retries = &v1.RetryPolicy{Backoff: &v1.RetryBackoff{BaseInterval: pdur("1s"), MaxInterval: pdur("100ms")}}
			}),
			field:   "spec.retries.backoff.baseInterval",
			message: "baseInterval must not be longer than maxInterval",
		},
		{
			name:    "duration in words",
			obj:     trafficPolicy(func(s *v1.TrafficPolicySpec) { s.Timeouts = &v1.Timeouts{Request: dur("5 seconds")} }),
			field:   "spec.timeouts.request",
			message: "should match",
		},
		{
			name:    "duration with a fraction",
			obj:     trafficPolicy(func(s *v1.TrafficPolicySpec) { s.Timeouts = &v1.Timeouts{Idle: dur("1.5s")} }),
			field:   "spec.timeouts.idle",
			message: "should match",
		},
		{
			name: "duration without a unit",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.OutlierDetection = &v1.OutlierDetection{Consecutive5xx: ptr(int32(5)), Interval: "10"}
			}),
			field:   "spec.outlierDetection.interval",
			message: "should match",
		},
		{
			name: "malformed perTryTimeout next to a request timeout",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.Timeouts = &v1.Timeouts{Request: dur("5s")}
				s.Retries = &v1.RetryPolicy{PerTryTimeout: pdur("2 seconds")}
			}),
			field:   "spec.retries.perTryTimeout",
			message: "should match",
		},
		{
			name: "malformed request timeout next to a perTryTimeout in a route",
			obj: route(func(r *v1.Route) {
				r.Timeouts = &v1.Timeouts{Request: dur("5S")}
				r.Retries = &v1.RetryPolicy{PerTryTimeout: pdur("2s")}
			}),
			field:   "spec.routes[0].timeouts.request",
			message: "should match",
		},
		{
			name: "malformed backoff base interval",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.Retries = &v1.RetryPolicy{Backoff: &v1.RetryBackoff{BaseInterval: pdur("fast"), MaxInterval: pdur("1s")}}
			}),
			field:   "spec.retries.backoff.baseInterval",
			message: "should match",
		},
		{
			name: "malformed health check interval",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.HealthCheck = &v1.HealthCheck{TCP: &v1.TCPHealthCheck{}, Interval: "10 seconds"}
			}),
			field:   "spec.healthCheck.interval",
			message: "should match",
		},
		{
			name:    "empty timeouts",
			obj:     trafficPolicy(func(s *v1.TrafficPolicySpec) { s.Timeouts = &v1.Timeouts{} }),
			field:   "spec.timeouts",
			message: "should have at least 1 properties",
		},

		// TrafficPolicy: fault injection.
		{
			name: "abort with both httpStatus and grpcStatus",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.FaultInjection = &v1.FaultInjection{Abort: &v1.FaultAbort{HTTPStatus: ptr(int32(503)), GRPCStatus: ptr(v1.GRPCStatus("UNAVAILABLE"))}}
			}),
			field:   "spec.faultInjection.abort",
			message: "set exactly one of httpStatus or grpcStatus",
		},
		{
			name: "abort with neither httpStatus nor grpcStatus",
			obj: route(func(r *v1.Route) {
				r.FaultInjection = &v1.FaultInjection{Abort: &v1.FaultAbort{Percentage: ptr(v1.Percent(5))}}
			}),
			field:   "spec.routes[0].faultInjection.abort",
			message: "set exactly one of httpStatus or grpcStatus",
		},
		{
			name: "abort percentage below 0",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.FaultInjection = &v1.FaultInjection{Abort: &v1.FaultAbort{HTTPStatus: ptr(int32(503)), Percentage: ptr(v1.Percent(-1))}}
			}),
			field:   "spec.faultInjection.abort.percentage",
			message: "should be greater than or equal to 0",
		},
		{
			name: "delay percentage above 100",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.FaultInjection = &v1.FaultInjection{Delay: &v1.FaultDelay{FixedDelay: "1s", Percentage: ptr(v1.Percent(150))}}
			}),
			field:   "spec.faultInjection.delay.percentage",
			message: "should be less than or equal to 100",
		},
		{
			name: "abort with an HTTP status below 200",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.FaultInjection = &v1.FaultInjection{Abort: &v1.FaultAbort{HTTPStatus: ptr(int32(100))}}
			}),
			field:   "spec.faultInjection.abort.httpStatus",
			message: "should be greater than or equal to 200",
		},

		// TrafficPolicy: routes.
		{
			name: "backends whose weights are all zero",
			obj: route(func(r *v1.Route) {
				r.Backends = []v1.Backend{{Subset: "v1", Weight: ptr(int32(0))}, {Subset: "v2", Weight: ptr(int32(0))}}
			}),
			field:   "spec.routes[0].backends",
			message: "at least one backend needs a weight above zero",
		},
		{
			name:    "negative backend weight",
			obj:     route(func(r *v1.Route) { r.Backends = []v1.Backend{{Subset: "v1", Weight: ptr(int32(-1))}, {Subset: "v2"}} }),
			field:   "spec.routes[0].backends[0].weight",
			message: "should be greater than or equal to 0",
		},
		{
			name: "path match with both exact and prefix",
			obj: route(func(r *v1.Route) {
				r.Matches = []v1.RouteMatch{{Path: &v1.PathMatch{Exact: ptr("/a"), Prefix: ptr("/a")}}}
			}),
			field:   "spec.routes[0].matches[0].path",
			message: "set exactly one of exact, prefix or regex",
		},
		{
			name:    "path match with nothing set",
			obj:     route(func(r *v1.Route) { r.Matches = []v1.RouteMatch{{Path: &v1.PathMatch{}}} }),
			field:   "spec.routes[0].matches[0].path",
			message: "set exactly one of exact, prefix or regex",
		},
		{
			name:    "exact path not starting with '/'",
			obj:     route(func(r *v1.Route) { r.Matches = []v1.RouteMatch{{Path: &v1.PathMatch{Exact: ptr("catalog")}}} }),
			field:   "spec.routes[0].matches[0].path.exact",
			message: "must start with '/'",
		},
		{
			name:    "header match with no matcher",
			obj:     route(func(r *v1.Route) { r.Matches = []v1.RouteMatch{{Headers: []v1.HeaderMatch{{Name: "x-canary"}}}} }),
			field:   "spec.routes[0].matches[0].headers[0]",
			message: "set exactly one of exact, prefix, regex or present",
		},
		{
			name: "header name with a space",
			obj: route(func(r *v1.Route) {
				r.Matches = []v1.RouteMatch{{Headers: []v1.HeaderMatch{{Name: "x canary", Present: ptr(true)}}}}
			}),
			field:   "spec.routes[0].matches[0].headers[0].name",
			message: "should match",
		},
		{
			name:    "unknown method",
			obj:     route(func(r *v1.Route) { r.Matches = []v1.RouteMatch{{Method: ptr(v1.HTTPMethod("get"))}} }),
			field:   "spec.routes[0].matches[0].method",
			message: `Unsupported value: "get"`,
		},

		// TrafficPolicy: load balancing.
		{
			name:    "RING_HASH without hashOn",
			obj:     trafficPolicy(func(s *v1.TrafficPolicySpec) { s.LoadBalancer = &v1.LoadBalancer{Type: v1.LoadBalancerRingHash} }),
			field:   "spec.loadBalancer.hashOn",
			message: "hashOn is required for RING_HASH and MAGLEV",
		},
		{
			name:    "MAGLEV without hashOn",
			obj:     trafficPolicy(func(s *v1.TrafficPolicySpec) { s.LoadBalancer = &v1.LoadBalancer{Type: v1.LoadBalancerMaglev} }),
			field:   "spec.loadBalancer.hashOn",
			message: "hashOn is required for RING_HASH and MAGLEV",
		},
		{
			name: "hashOn with ROUND_ROBIN",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.LoadBalancer = &v1.LoadBalancer{Type: v1.LoadBalancerRoundRobin, HashOn: &v1.HashOn{SourceIP: ptr(true)}}
			}),
			field:   "spec.loadBalancer.hashOn",
			message: "not allowed otherwise",
		},
		{
			name: "hashOn with two keys",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.LoadBalancer = &v1.LoadBalancer{Type: v1.LoadBalancerRingHash, HashOn: &v1.HashOn{Header: ptr(v1.HeaderName("x-user")), SourceIP: ptr(true)}}
			}),
			field:   "spec.loadBalancer.hashOn",
			message: "set exactly one of header, cookie or sourceIP",
		},
		{
			name: "hashOn sourceIP false",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.LoadBalancer = &v1.LoadBalancer{Type: v1.LoadBalancerMaglev, HashOn: &v1.HashOn{SourceIP: ptr(false)}}
			}),
			field:   "spec.loadBalancer.hashOn.sourceIP",
			message: "must be true when set",
		},

		// TrafficPolicy: outlier detection, health checks and failover.
		{
			name: "outlier maxEjectionPercent above 100",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.OutlierDetection = &v1.OutlierDetection{Consecutive5xx: ptr(int32(5)), MaxEjectionPercent: ptr(v1.Percent(101))}
			}),
			field:   "spec.outlierDetection.maxEjectionPercent",
			message: "should be less than or equal to 100",
		},
		{
			name: "outlier detection with no error count",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.OutlierDetection = &v1.OutlierDetection{MaxEjectionPercent: ptr(v1.Percent(50))}
			}),
			field:   "spec.outlierDetection",
			message: "set consecutive5xx, consecutiveGatewayErrors or both",
		},
		{
			name: "health check with two probe types",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.HealthCheck = &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{}, TCP: &v1.TCPHealthCheck{}}
			}),
			field:   "spec.healthCheck",
			message: "set exactly one of http, grpc or tcp",
		},
		{
			name: "health check timeout longer than its interval",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.HealthCheck = &v1.HealthCheck{TCP: &v1.TCPHealthCheck{}, Interval: "2s", Timeout: "3s"}
			}),
			field:   "spec.healthCheck.timeout",
			message: "timeout, 1s unless set, must not be longer than interval",
		},
		{
			name: "health check interval shorter than the default timeout",
			obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
				s.HealthCheck = &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{}, Interval: "500ms"}
			}),
			field:   "spec.healthCheck.timeout",
			message: "timeout, 1s unless set, must not be longer than interval",
		},
		{
			name:    "failover without outlierDetection or healthCheck",
			obj:     trafficPolicy(func(s *v1.TrafficPolicySpec) { s.Failover = &v1.Failover{Locality: true} }),
			field:   "spec.failover",
			message: "failover needs outlierDetection or healthCheck",
		},
		{
			name:    "failover with nothing set",
			obj:     trafficPolicy(func(s *v1.TrafficPolicySpec) { s.OutlierDetection = outlier; s.Failover = &v1.Failover{} }),
			field:   "spec.failover",
			message: "set locality to true, list fallback services, or both",
		},

		// TrafficPolicy: target.
		{
			name:    "target kind other than MeshService",
			obj:     trafficPolicy(func(s *v1.TrafficPolicySpec) { s.TargetRef.Kind = "Service" }),
			field:   "spec.targetRef.kind",
			message: `Unsupported value: "Service"`,
		},
		{
			name: "target without a name",
			obj: fromYAML(`
apiVersion: mesh.skein.io/v1alpha1
kind: TrafficPolicy
metadata: {generateName: catalog-}
spec:
  targetRef: {kind: MeshService}`),
			field:   "spec.targetRef.name",
			message: "Required value",
		},
		{
			name:    "target with an empty name",
			obj:     trafficPolicy(func(s *v1.TrafficPolicySpec) { s.TargetRef.Name = "" }),
			field:   "spec.targetRef.name",
			message: "should be at least 1 chars long",
		},

		// MeshService.
		{
			name:    "exportTo mixing '*' and a namespace",
			obj:     meshService(func(s *v1.MeshServiceSpec) { s.ExportTo = []string{"*", "shop"} }),
			field:   "spec.exportTo",
			message: "'*' already exports to every namespace",
		},
		{
			name:    "exportTo with a namespace name in capitals",
			obj:     meshService(func(s *v1.MeshServiceSpec) { s.ExportTo = []string{"Shop"} }),
			field:   "spec.exportTo[0]",
			message: "should match",
		},
		{
			name:    "unknown protocol",
			obj:     meshService(func(s *v1.MeshServiceSpec) { s.Ports[0].Protocol = "HTTP3" }),
			field:   "spec.ports[0].protocol",
			message: `Unsupported value: "HTTP3"`,
		},
		{
			name:    "port 0",
			obj:     meshService(func(s *v1.MeshServiceSpec) { s.Ports[0].Port = 0 }),
			field:   "spec.ports[0].port",
			message: "should be greater than or equal to 1",
		},
		{
			name:    "port 70000",
			obj:     meshService(func(s *v1.MeshServiceSpec) { s.Ports[0].Port = 70000 }),
			field:   "spec.ports[0].port",
			message: "should be less than or equal to 65535",
		},
		{
			name: "the same port twice",
			obj: meshService(func(s *v1.MeshServiceSpec) {
				s.Ports = append(s.Ports, v1.MeshServicePort{Port: 8080, Protocol: v1.ProtocolGRPC})
			}),
			field:   "spec.ports[1]",
			message: "Duplicate value",
		},
		{
			name:    "subset with no labels",
			obj:     meshService(func(s *v1.MeshServiceSpec) { s.Subsets[0].Labels = map[string]string{} }),
			field:   "spec.subsets[0].labels",
			message: "should have at least 1 properties",
		},
		{
			name:    "subset without labels",
			obj:     meshService(func(s *v1.MeshServiceSpec) { s.Subsets[1].Labels = nil }),
			field:   "spec.subsets[1].labels",
			message: "Required value",
		},
		{
			name:    "the same subset twice",
			obj:     meshService(func(s *v1.MeshServiceSpec) { s.Subsets[1].Name = "v1" }),
			field:   "spec.subsets[1]",
			message: "Duplicate value",
		},
		{
			name:    "unknown mtls mode",
			obj:     meshService(func(s *v1.MeshServiceSpec) { s.MTLS = &v1.MTLSSettings{Mode: "OPTIONAL"} }),
			field:   "spec.mtls.mode",
			message: `Unsupported value: "OPTIONAL"`,
		},

		// AuthorizationPolicy.
		{
			name:    "principal not starting with spiffe://",
			obj:     source(v1.Source{Principals: []v1.Principal{"cluster.local/ns/default/sa/frontend"}}),
			field:   "spec.rules[0].from[0].principals[0]",
			message: "must be '*', start with 'spiffe://'",
		},
		{
			name:    "principal with '*' in the middle",
			obj:     source(v1.Source{Principals: []v1.Principal{"spiffe://cluster.local/ns/*/sa/web"}}),
			field:   "spec.rules[0].from[0].principals[0]",
			message: "must be '*', start with 'spiffe://'",
		},
		{
			name:    "principal with '*' at both ends",
			obj:     source(v1.Source{Principals: []v1.Principal{"spiffe://cluster.local/ns/default/sa/frontend", "*/sa/*"}}),
			field:   "spec.rules[0].from[0].principals[1]",
			message: "must be '*', start with 'spiffe://'",
		},
		{
			name:    "principal that is only the scheme",
			obj:     source(v1.Source{Principals: []v1.Principal{"spiffe://"}}),
			field:   "spec.rules[0].from[0].principals[0]",
			message: "must be '*', start with 'spiffe://'",
		},
		{
			name:    "IPv4 block with a /33 prefix",
			obj:     source(v1.Source{IPBlocks: []v1.CIDR{"10.0.0.0/33"}}),
			field:   "spec.rules[0].from[0].ipBlocks[0]",
			message: "must be a CIDR",
		},
		{
			name:    "IP address without a prefix length",
			obj:     source(v1.Source{IPBlocks: []v1.CIDR{"10.1.2.3"}}),
			field:   "spec.rules[0].from[0].ipBlocks[0]",
			message: "must be a CIDR",
		},
		{
			name:    "service account with two slashes",
			obj:     source(v1.Source{ServiceAccounts: []v1.ServiceAccountName{"shop/web/v1"}}),
			field:   "spec.rules[0].from[0].serviceAccounts[0]",
			message: "should match",
		},
		{
			name:    "service account in capitals",
			obj:     source(v1.Source{ServiceAccounts: []v1.ServiceAccountName{"Frontend"}}),
			field:   "spec.rules[0].from[0].serviceAccounts[0]",
			message: "should match",
		},
		{
			name:    "empty source",
			obj:     source(v1.Source{}),
			field:   "spec.rules[0].from[0]",
			message: "should have at least 1 properties",
		},
		{
			name: "source with an empty principals list",
			obj: fromYAML(`
apiVersion: mesh.skein.io/v1alpha1
kind: AuthorizationPolicy
metadata: {generateName: catalog-}
spec:
  rules:
  - from:
    - principals: []`),
			field:   "spec.rules[0].from[0].principals",
			message: "should have at least 1 items",
		},
		{
			name: "operation with an empty paths list",
			obj: fromYAML(`
apiVersion: mesh.skein.io/v1alpha1
kind: AuthorizationPolicy
metadata: {generateName: catalog-}
spec:
  rules:
  - to:
    - paths: []`),
			field:   "spec.rules[0].to[0].paths",
			message: "should have at least 1 items",
		},
		{
			name:    "authorization path by regex",
			obj:     operation(v1.Operation{Paths: []v1.PathMatch{{Prefix: ptr("/catalog")}, {Regex: ptr("/catalog/.*")}}}),
			field:   "spec.rules[0].to[0].paths",
			message: "authorization paths match by exact or prefix only",
		},
		{
			name:    "authorization prefix not starting with '/'",
			obj:     operation(v1.Operation{Paths: []v1.PathMatch{{Prefix: ptr("catalog")}}}),
			field:   "spec.rules[0].to[0].paths[0].prefix",
			message: "must start with '/'",
		},
		{
			name:    "authorization port 0",
			obj:     operation(v1.Operation{Ports: []v1.PortNumber{0}}),
			field:   "spec.rules[0].to[0].ports[0]",
			message: "should be greater than or equal to 1",
		},
		{
			name:    "unknown action",
			obj:     authorizationPolicy(func(s *v1.AuthorizationPolicySpec) { s.Action = "REJECT" }),
			field:   "spec.action",
			message: `Unsupported value: "REJECT"`,
		},
		{
			name: "when with empty values",
			obj: authorizationPolicy(func(s *v1.AuthorizationPolicySpec) {
				s.Rules[0].When = []v1.Condition{{Header: "x-tenant", Values: []string{}}}
			}),
			field:   "spec.rules[0].when[0].values",
			message: "should have at least 1 items",
		},
		{
			name: "when without values",
			obj: fromYAML(`
apiVersion: mesh.skein.io/v1alpha1
kind: AuthorizationPolicy
metadata: {generateName: catalog-}
spec:
  rules:
  - when:
    - header: x-tenant`),
			field:   "spec.rules[0].when[0].values",
			message: "Required value",
		},
		{
			name:    "target port 70000",
			obj:     authorizationPolicy(func(s *v1.AuthorizationPolicySpec) { s.TargetRef.Port = ptr(v1.PortNumber(70000)) }),
			field:   "spec.targetRef.port",
			message: "should be less than or equal to 65535",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.obj.SetNamespace(ns)
			err := k8s.Create(t.Context(), tc.obj)
			if err == nil {
				t.Fatalf("created %s; want it rejected with %s: ...%s...", tc.obj.GetName(), tc.field, tc.message)
			}
			t.Log(err) // with -v, what a user sees
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got %v; want an Invalid error", err)
			}
			if !namesOnly(err, tc.field, tc.message) {
				t.Errorf("got %v\nwant errors on %s only, one containing %q", err, tc.field, tc.message)
			}
		})
	}
}

// namesOnly reports whether err, an Invalid status error, names field with a
// message containing fragment, and names no other field. The API server's
// notice that it skipped CEL rules because of other errors does not count.
func namesOnly(err error, field, fragment string) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	found := false
	for _, cause := range status.Status().Details.Causes {
		switch {
		case cause.Field == field:
			found = found || strings.Contains(cause.Message, fragment)
		case strings.Contains(cause.Message, "some validation rules were not checked"):
		default:
			return false
		}
	}
	return found && strings.Contains(err.Error(), field+": ")
}

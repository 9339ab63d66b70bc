package crd_test

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// TestValidObjectsAccepted creates valid objects, edge cases among them, and
// the objects the invalid cases start from, so that each invalid case fails
// for its one change only.
func TestValidObjectsAccepted(t *testing.T) {
	ns := newNamespace(t, "valid")
	for _, tc := range []struct {
		name string        // what is unusual about obj, if anything
		obj  client.Object // the object to create, in a namespace of the test's
	}{
		{name: "MeshService the invalid cases start from", obj: meshService(func(*v1.MeshServiceSpec) {})},
		{name: "TrafficPolicy the invalid cases start from", obj: trafficPolicy(func(*v1.TrafficPolicySpec) {})},
		{name: "route the invalid cases start from", obj: route(func(*v1.Route) {})},
		{name: "AuthorizationPolicy the invalid cases start from", obj: authorizationPolicy(func(*v1.AuthorizationPolicySpec) {})},

		{name: "MeshService with an empty spec", obj: meshService(func(s *v1.MeshServiceSpec) { *s = v1.MeshServiceSpec{} })},
		{name: "exportTo '*' alone", obj: meshService(func(s *v1.MeshServiceSpec) { s.ExportTo = []string{"*"} })},
		{name: "exportTo own namespace and another", obj: meshService(func(s *v1.MeshServiceSpec) { s.ExportTo = []string{".", "shop"} })},
		{name: "ports 1 and 65535", obj: meshService(func(s *v1.MeshServiceSpec) {
			s.Ports = []v1.MeshServicePort{{Port: 1}, {Port: 65535, Protocol: v1.ProtocolTCP}}
		})},

		{name: "one backend weighted zero, another positive", obj: route(func(r *v1.Route) {
			r.Backends = []v1.Backend{{Subset: "v1", Weight: ptr(int32(0))}, {Subset: "v2", Weight: ptr(int32(100))}}
		})},
		{name: "route with no backends", obj: route(func(r *v1.Route) { r.Backends = nil })},
		{name: "perTryTimeout equal to the request timeout in other units", obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
			s.Timeouts = &v1.Timeouts{Request: dur("1m30s")}
			s.Retries = &v1.RetryPolicy{Attempts: ptr(int32(10)), PerTryTimeout: pdur("90000ms")}
		})},
		{name: "perTryTimeout without a request timeout", obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
			s.Retries = &v1.RetryPolicy{PerTryTimeout: pdur("1h")}
		})},
		{name: "route with an explicitly empty backends list", obj: fromYAML(`
apiVersion: mesh.skein.io/v1alpha1
kind: TrafficPolicy
metadata: {generateName: catalog-}
spec:
  targetRef: {name: catalog}
  routes:
  - name: all
    backends: []`)},
		{name: "percentages 0 and 100, and no retries", obj: fromYAML(`
apiVersion: mesh.skein.io/v1alpha1
kind: TrafficPolicy
metadata: {generateName: catalog-}
spec:
  targetRef: {name: catalog}
  retries: {attempts: 0, budget: {percent: 0}}
  outlierDetection: {consecutiveGatewayErrors: 3, maxEjectionPercent: 100}
  faultInjection:
    delay: {fixedDelay: 250ms, percentage: 100}
    abort: {grpcStatus: UNAVAILABLE, percentage: 0}`)},
		{name: "RING_HASH on a cookie", obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
			s.LoadBalancer = &v1.LoadBalancer{Type: v1.LoadBalancerRingHash, HashOn: &v1.HashOn{Cookie: &v1.HashCookie{Name: "session", TTL: dur("1h")}}}
		})},
		{name: "health check that sets only a probe", obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
			s.HealthCheck = &v1.HealthCheck{GRPC: &v1.GRPCHealthCheck{}}
		})},
		{name: "health check timeout equal to its interval", obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
			s.HealthCheck = &v1.HealthCheck{TCP: &v1.TCPHealthCheck{}, Interval: "2s", Timeout: "2000ms"}
		})},
		{name: "failover by locality with a health check", obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
			s.HealthCheck = &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{Path: "/healthz"}}
			s.Failover = &v1.Failover{Locality: true}
		})},
		{name: "failover to another service with outlier detection", obj: trafficPolicy(func(s *v1.TrafficPolicySpec) {
			s.OutlierDetection = outlier
			s.Failover = &v1.Failover{Services: []v1.ServiceReference{{Name: "catalog-backup", Namespace: "dr"}}}
		})},

		{name: "principal '*'", obj: source(v1.Source{Principals: []v1.Principal{"*"}})},
		{name: "principal suffix wildcard", obj: source(v1.Source{Principals: []v1.Principal{"*/sa/web"}})},
		{name: "principal prefix wildcard", obj: source(v1.Source{Principals: []v1.Principal{"spiffe://cluster.local/ns/shop/*"}})},
		{name: "IPv4 and IPv6 blocks", obj: source(v1.Source{IPBlocks: []v1.CIDR{"10.0.0.0/8", "fd00::/8", "2001:db8::1/128"}})},
		{name: "service accounts with and without a namespace", obj: source(v1.Source{ServiceAccounts: []v1.ServiceAccountName{"web", "shop/web.v1"}})},
		{name: "exact and prefix authorization paths", obj: operation(v1.Operation{Paths: []v1.PathMatch{{Exact: ptr("/")}, {Prefix: ptr("/catalog")}}})},
		{name: "DENY with no target and no rules", obj: authorizationPolicy(func(s *v1.AuthorizationPolicySpec) {
			*s = v1.AuthorizationPolicySpec{Action: v1.ActionDeny}
		})},
		{name: "when with an empty value", obj: authorizationPolicy(func(s *v1.AuthorizationPolicySpec) {
			s.Rules[0].When = []v1.Condition{{Header: "x-tenant", Values: []string{""}}}
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.obj.SetNamespace(ns)
			if err := k8s.Create(t.Context(), tc.obj); err != nil {
				t.Errorf("got %v; want it accepted", err)
			}
		})
	}
}

// TestZeroIsNotDefaulted pins a bug found in review: percentages, retry
// attempts and budgets were plain integers with omitempty and a default, so
// a Go client's explicit 0 was dropped and the default applied instead; an
// abort at 0% became an abort of every request.
func TestZeroIsNotDefaulted(t *testing.T) {
	ns := newNamespace(t, "zero")
	zero := ptr(v1.Percent(0))
	tp := trafficPolicy(func(s *v1.TrafficPolicySpec) {
		s.Retries = &v1.RetryPolicy{Attempts: ptr(int32(0)), Budget: &v1.RetryBudget{Percent: zero, MinRetryConcurrency: ptr(int32(0))}}
		s.OutlierDetection = &v1.OutlierDetection{Consecutive5xx: ptr(int32(5)), MaxEjectionPercent: zero}
		s.FaultInjection = &v1.FaultInjection{
			Delay: &v1.FaultDelay{FixedDelay: "1s", Percentage: zero},
			Abort: &v1.FaultAbort{HTTPStatus: ptr(int32(503)), Percentage: zero},
		}
	})
	tp.SetNamespace(ns)
	if err := k8s.Create(t.Context(), tp); err != nil {
		t.Fatal(err)
	}
	got := &v1.TrafficPolicy{}
	if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(tp), got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	for name, v := range map[string]*int32{
		"retries.attempts":                    s.Retries.Attempts,
		"retries.budget.minRetryConcurrency":  s.Retries.Budget.MinRetryConcurrency,
		"retries.budget.percent":              (*int32)(s.Retries.Budget.Percent),
		"outlierDetection.maxEjectionPercent": (*int32)(s.OutlierDetection.MaxEjectionPercent),
		"faultInjection.delay.percentage":     (*int32)(s.FaultInjection.Delay.Percentage),
		"faultInjection.abort.percentage":     (*int32)(s.FaultInjection.Abort.Percentage),
	} {
		if v == nil || *v != 0 {
			t.Errorf("%s came back as %v, want an explicit 0", name, v)
		}
	}
}

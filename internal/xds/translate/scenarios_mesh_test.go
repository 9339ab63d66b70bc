package translate

import (
	"slices"
	"testing"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// localized is an endpoint in a region and zone.
func localized(e mesh.Endpoint, region, zone string) mesh.Endpoint {
	e.Region, e.Zone = region, zone
	return e
}

// webPod is the proxy of pod web-0 (service web, zone eu-a) in shop.
var webPod = mesh.Proxy{ID: "sidecar~10.1.2.100~web-0.shop~shop.svc.cluster.local", Namespace: "shop", Pod: "web-0", IP: "10.1.2.100"}

// localityModel has catalog with endpoints in eu-a, eu-b and us-a and a
// policy asking for locality failover, and web, whose pod web-0 is in eu-a.
func localityModel() *mesh.Model {
	catalog := withPolicy(func() *mesh.Service {
		s := newService("shop", "catalog", "10.96.2.10", port(80, "http", meshv1alpha1.ProtocolHTTP, 8080))
		s.Endpoints = []mesh.Endpoint{
			localized(endpoint("10.1.2.1", "catalog-a", "catalog", 80, 8080), "eu", "eu-a"),
			localized(endpoint("10.1.2.2", "catalog-b", "catalog", 80, 8080), "eu", "eu-b"),
			localized(endpoint("10.1.2.3", "catalog-c", "catalog", 80, 8080), "us", "us-a"),
		}
		return s
	}(), "catalog-local", 0, meshv1alpha1.TrafficPolicySpec{Failover: &meshv1alpha1.Failover{Locality: true}})
	web := newService("shop", "web", "10.96.2.20", port(80, "http", meshv1alpha1.ProtocolHTTP, 8080))
	web.Endpoints = []mesh.Endpoint{localized(endpoint("10.1.2.100", "web-0", "web", 80, 8080), "eu", "eu-a")}
	return newModel(catalog, web)
}

// meshScenarios are about failover, visibility, outbound traffic policy and
// inbound listeners.
var meshScenarios = []scenario{
	{
		name:  "locality-failover",
		about: "failover.locality: for web-0 (eu/eu-a), catalog's endpoints in eu-a are priority 0, eu-b 1, us-a 2.",
		model: localityModel(),
		proxy: webPod,
		check: func(t *testing.T, r *Resources) {
			const name = "outbound|80||catalog.shop.svc.cluster.local"
			cla := findCLA(r, name)
			for prio, want := range [][]string{{"10.1.2.1:8080"}, {"10.1.2.2:8080"}, {"10.1.2.3:8080"}} {
				if got := endpointsAt(cla, uint32(prio)); !slices.Equal(got, want) {
					t.Errorf("priority %d: %v, want %v", prio, got, want)
				}
			}
			m := localityModel()
			shared := Outbound(m, "shop")
			_ = ForProxyFrom(m, webPod, shared)
			if got := endpointsAt(findCLA(shared, name), 0); len(got) != 3 {
				t.Errorf("ForProxyFrom changed the shared Outbound: priority 0 holds %v", got)
			}
			proxyless := ForProxy(m, mesh.Proxy{ID: "grpc-client", Namespace: "shop"})
			if got := endpointsAt(findCLA(proxyless, name), 0); len(got) != 3 {
				t.Errorf("a proxyless client (unknown locality) got priorities: priority 0 holds %v", got)
			}
		},
	},
	{
		name: "failover-service",
		about: `failover.services: no aggregate cluster; catalog's ClusterLoadAssignment carries catalog-backup's
		endpoints at priority 1 and dr/catalog's at priority 2 (same port number).`,
		model: newModel(
			withPolicy(httpService("shop", "catalog", "10.96.2.30", "10.1.2.30"), "catalog-failover", 0, meshv1alpha1.TrafficPolicySpec{
				Failover: &meshv1alpha1.Failover{Services: []meshv1alpha1.ServiceReference{{Name: "catalog-backup"}, {Name: "catalog", Namespace: "dr"}}},
			}),
			httpService("shop", "catalog-backup", "10.96.2.31", "10.1.2.31"),
			httpService("dr", "catalog", "10.96.2.32", "10.1.2.32"),
		),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			cla := findCLA(r, "outbound|80||catalog.shop.svc.cluster.local")
			for prio, want := range [][]string{{"10.1.2.30:8080"}, {"10.1.2.31:8080"}, {"10.1.2.32:8080"}} {
				if got := endpointsAt(cla, uint32(prio)); !slices.Equal(got, want) {
					t.Errorf("priority %d: %v, want %v", prio, got, want)
				}
			}
		},
	},
	{
		name:  "allow-any",
		about: "ALLOW_ANY: the outbound default chain and the port's catch-all virtual host go to PassthroughCluster.",
		model: newModel(httpService("shop", "web", "10.96.2.40", "10.1.2.40")),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			if findCluster(r, PassthroughCluster) == nil || findCluster(r, BlackHoleCluster) != nil {
				t.Errorf("want PassthroughCluster and no BlackHoleCluster")
			}
			if vh := findVHost(findRouteConfig(r, "80"), allowAnyVHost); vh.GetRoutes()[0].GetRoute().GetCluster() != PassthroughCluster {
				t.Errorf("catch-all virtual host %v", vh)
			}
		},
	},
	{
		name:  "registry-only",
		about: "REGISTRY_ONLY: the outbound default chain goes to BlackHoleCluster and unknown hosts get 502.",
		model: func() *mesh.Model {
			m := newModel(httpService("shop", "web", "10.96.2.40", "10.1.2.40"))
			m.Settings.OutboundTrafficPolicy = meshconfig.OutboundRegistryOnly
			return m
		}(),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			if findCluster(r, BlackHoleCluster) == nil {
				t.Errorf("no BlackHoleCluster")
			}
			if n := findListener(r, VirtualOutbound).GetDefaultFilterChain().GetName(); n != BlackHoleCluster {
				t.Errorf("outbound default chain %q, want %s", n, BlackHoleCluster)
			}
			if vh := findVHost(findRouteConfig(r, "80"), blockAllVHost); vh.GetRoutes()[0].GetDirectResponse().GetStatus() != 502 {
				t.Errorf("catch-all virtual host %v, want a 502", vh)
			}
		},
	},
	{
		name: "not-exported",
		about: `exportTo: shop sees public (*), partner (exported to shop) and its own local (.), not billing/private (.)
		nor billing/hidden (exported to other).`,
		model: newModel(
			httpService("billing", "public", "10.96.2.50", "10.1.2.50"),
			func() *mesh.Service {
				s := httpService("billing", "private", "10.96.2.51", "10.1.2.51")
				s.ExportTo = []string{"."}
				return s
			}(),
			func() *mesh.Service {
				s := httpService("billing", "partner", "10.96.2.52", "10.1.2.52")
				s.ExportTo = []string{"shop"}
				return s
			}(),
			func() *mesh.Service {
				s := httpService("billing", "hidden", "10.96.2.53", "10.1.2.53")
				s.ExportTo = []string{"other"}
				return s
			}(),
			func() *mesh.Service {
				s := httpService("shop", "local", "10.96.2.54", "10.1.2.54")
				s.ExportTo = []string{"."}
				return s
			}(),
		),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			for _, h := range []string{"public.billing", "partner.billing", "local.shop"} {
				if findCluster(r, "outbound|80||"+h+".svc.cluster.local") == nil {
					t.Errorf("%s is exported to shop but has no cluster", h)
				}
			}
			for _, h := range []string{"private.billing", "hidden.billing"} {
				if findCluster(r, "outbound|80||"+h+".svc.cluster.local") != nil || findVHost(findRouteConfig(r, "80"), h+".svc.cluster.local:80") != nil {
					t.Errorf("%s is not exported to shop but shop's proxy sees it", h)
				}
			}
			for _, s := range r.Sources {
				if s.Name == "private" || s.Name == "hidden" {
					t.Errorf("sources name %v", s)
				}
			}
		},
	},
	{
		name:  "two-services-one-pod",
		about: "Pod app-0 serves api (HTTP 80 -> 8080) and metrics (TCP 9100): an inbound chain each, to inbound|<port>||.",
		model: newModel(
			func() *mesh.Service {
				s := newService("shop", "api", "10.96.2.60", port(80, "http", meshv1alpha1.ProtocolHTTP, 8080))
				s.Endpoints = []mesh.Endpoint{endpoint("10.1.2.60", "app-0", "app", 80, 8080), endpoint("10.1.2.61", "app-1", "app", 80, 8080)}
				return s
			}(),
			func() *mesh.Service {
				s := newService("shop", "metrics", "10.96.2.61", port(9100, "metrics", meshv1alpha1.ProtocolTCP, 9100))
				s.Endpoints = []mesh.Endpoint{endpoint("10.1.2.60", "app-0", "app", 9100, 9100)}
				return s
			}(),
			httpService("shop", "other", "10.96.2.62", "10.1.2.62"),
		),
		proxy: mesh.Proxy{ID: "sidecar~10.1.2.60~app-0.shop~shop.svc.cluster.local", Namespace: "shop", Pod: "app-0", IP: "10.1.2.60"},
		check: func(t *testing.T, r *Resources) {
			chains := findListener(r, VirtualInbound).GetFilterChains()
			if len(chains) != 2 || inboundChainOf(r, 8080) == nil || inboundChainOf(r, 9100) == nil {
				t.Errorf("inbound chains %v, want 8080 and 9100", chains)
			}
			for _, c := range []string{"inbound|8080||", "inbound|9100||"} {
				if findCluster(r, c) == nil {
					t.Errorf("no cluster %s", c)
				}
			}
		},
	},
	{
		name:  "proxyless-client",
		about: "A proxyless gRPC client (no pod): no virtualInbound, API listeners for the gRPC port.",
		model: newModel(grpcService("shop", "catalog", "10.96.2.70", "10.1.2.70"), httpService("shop", "web", "10.96.2.71", "10.1.2.71")),
		proxy: mesh.Proxy{ID: "grpc-client~shop", Namespace: "shop"},
		check: func(t *testing.T, r *Resources) {
			if findListener(r, VirtualInbound) != nil {
				t.Errorf("a proxyless client got virtualInbound")
			}
			if findListener(r, "catalog.shop.svc.cluster.local:9090").GetApiListener() == nil {
				t.Errorf("no API listener for catalog")
			}
		},
	},
}

// reviews serves HTTP 9080 and TCP 9081 from pod reviews-0.
func reviewsModel(settings func(*meshconfig.Settings), policies ...*mesh.AuthorizationPolicy) *mesh.Model {
	s := newService("shop", "reviews", "10.96.3.10", port(9080, "http", meshv1alpha1.ProtocolHTTP, 9080), port(9081, "raw", meshv1alpha1.ProtocolTCP, 9081))
	e := endpoint("10.1.3.10", "reviews-0", "reviews", 9080, 9080)
	e.Ports[9081] = 9081
	s.Endpoints = []mesh.Endpoint{e}
	m := newModel(s)
	m.AuthorizationPolicies = policies
	if settings != nil {
		settings(&m.Settings)
	}
	return m
}

var reviewsPod = mesh.Proxy{ID: "sidecar~10.1.3.10~reviews-0.shop~shop.svc.cluster.local", Namespace: "shop", Pod: "reviews-0", IP: "10.1.3.10"}

func authz(name string, spec meshv1alpha1.AuthorizationPolicySpec) *mesh.AuthorizationPolicy {
	return &mesh.AuthorizationPolicy{Name: name, Namespace: "shop", Generation: 2, Spec: &spec}
}

func target(name string) *meshv1alpha1.PolicyTargetReference {
	return &meshv1alpha1.PolicyTargetReference{Name: meshv1alpha1.ObjectName(name)}
}

// actions is the RBAC actions in filter order.
func actions(rs []*rbacv3.RBAC) []rbacv3.RBAC_Action {
	var out []rbacv3.RBAC_Action
	for _, r := range rs {
		out = append(out, r.GetAction())
	}
	return out
}

// authzScenarios are about AuthorizationPolicies on virtualInbound.
var authzScenarios = []scenario{
	{
		name: "authz-allow",
		about: `ALLOW: web's SPIFFE ID or the frontend namespace, to GET /api/..., with x-tenant a or b; or 10.0.0.0/8
		as ops/admin; plus a namespace-wide ALLOW for any authenticated caller. On TCP 9081 the rule
		with paths, methods and when is left out (it cannot match at L4).`,
		model: reviewsModel(nil,
			authz("reviews-callers", meshv1alpha1.AuthorizationPolicySpec{TargetRef: target("reviews"), Rules: []meshv1alpha1.AuthorizationRule{
				{
					From: []meshv1alpha1.Source{{Principals: []meshv1alpha1.Principal{"spiffe://cluster.local/ns/shop/sa/web"}}, {Namespaces: []meshv1alpha1.ObjectName{"frontend"}}},
					To:   []meshv1alpha1.Operation{{Methods: []meshv1alpha1.HTTPMethod{"GET"}, Paths: []meshv1alpha1.PathMatch{{Prefix: ptr("/api")}}}},
					When: []meshv1alpha1.Condition{{Header: "X-Tenant", Values: []string{"a", "b"}}},
				},
				{From: []meshv1alpha1.Source{{IPBlocks: []meshv1alpha1.CIDR{"10.0.0.0/8"}, ServiceAccounts: []meshv1alpha1.ServiceAccountName{"ops/admin"}}}},
			}}),
			authz("shop-mtls", meshv1alpha1.AuthorizationPolicySpec{Rules: []meshv1alpha1.AuthorizationRule{{From: []meshv1alpha1.Source{{Principals: []meshv1alpha1.Principal{"*"}}}}}}),
		),
		proxy: reviewsPod,
		check: func(t *testing.T, r *Resources) {
			rs := inboundRBAC(t, r, 9080)
			if !slices.Equal(actions(rs), []rbacv3.RBAC_Action{rbacv3.RBAC_ALLOW}) || len(rs[0].GetPolicies()) != 3 {
				t.Errorf("HTTP RBAC %v, want one ALLOW filter with 3 policies", rs)
			}
			if n := len(r.Sources); n != 3 {
				t.Errorf("sources %v, want reviews and both policies", r.Sources)
			}
		},
	},
	{
		name: "authz-deny",
		about: `DENY: DELETE on port 9080 only; anything from namespace untrusted that POSTs. On TCP 9081 the second
		rule loses its method and denies every connection from untrusted; the first does not apply.`,
		model: reviewsModel(nil,
			authz("no-delete", meshv1alpha1.AuthorizationPolicySpec{
				TargetRef: &meshv1alpha1.PolicyTargetReference{Name: "reviews", Port: ptr[meshv1alpha1.PortNumber](9080)},
				Action:    meshv1alpha1.ActionDeny,
				Rules:     []meshv1alpha1.AuthorizationRule{{To: []meshv1alpha1.Operation{{Methods: []meshv1alpha1.HTTPMethod{"DELETE"}}}}},
			}),
			authz("no-untrusted", meshv1alpha1.AuthorizationPolicySpec{
				TargetRef: target("reviews"),
				Action:    meshv1alpha1.ActionDeny,
				Rules: []meshv1alpha1.AuthorizationRule{{
					From: []meshv1alpha1.Source{{Namespaces: []meshv1alpha1.ObjectName{"untrusted"}}},
					To:   []meshv1alpha1.Operation{{Methods: []meshv1alpha1.HTTPMethod{"POST"}}},
				}},
			}),
		),
		proxy: reviewsPod,
		check: func(t *testing.T, r *Resources) {
			rs := inboundRBAC(t, r, 9080)
			if !slices.Equal(actions(rs), []rbacv3.RBAC_Action{rbacv3.RBAC_DENY}) || len(rs[0].GetPolicies()) != 2 {
				t.Errorf("HTTP RBAC %v, want one DENY filter with both policies", rs)
			}
		},
	},
	{
		name:  "authz-audit",
		about: "AUDIT: requests to /admin are logged (RBAC action LOG); nothing is refused (defaultAuthorization ALLOW).",
		model: reviewsModel(nil, authz("audit-admin", meshv1alpha1.AuthorizationPolicySpec{
			TargetRef: target("reviews"),
			Action:    meshv1alpha1.ActionAudit,
			Rules:     []meshv1alpha1.AuthorizationRule{{To: []meshv1alpha1.Operation{{Paths: []meshv1alpha1.PathMatch{{Exact: ptr("/admin")}}}}}},
		})),
		proxy: reviewsPod,
		check: func(t *testing.T, r *Resources) {
			if got := actions(inboundRBAC(t, r, 9080)); !slices.Equal(got, []rbacv3.RBAC_Action{rbacv3.RBAC_LOG}) {
				t.Errorf("RBAC actions %v, want LOG only", got)
			}
		},
	},
	{
		name:  "authz-default-deny",
		about: "No policy and defaultAuthorization DENY: an ALLOW filter with no policies refuses everything, HTTP and TCP.",
		model: reviewsModel(func(s *meshconfig.Settings) { s.DefaultAuthorization = meshconfig.AuthorizationDeny }),
		proxy: reviewsPod,
		check: func(t *testing.T, r *Resources) {
			rs := inboundRBAC(t, r, 9080)
			if len(rs) != 1 || rs[0].GetAction() != rbacv3.RBAC_ALLOW || len(rs[0].GetPolicies()) != 0 {
				t.Errorf("HTTP RBAC %v, want ALLOW with no policies", rs)
			}
			if f := inboundChainOf(r, 9081).GetFilters(); len(f) != 2 || f[0].GetName() != networkRBAC {
				t.Errorf("TCP chain filters %v, want network RBAC then tcp_proxy", f)
			}
		},
	},
}

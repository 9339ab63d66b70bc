package translate

import (
	"slices"
	"testing"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
)

// scenarios are the golden cases; each has testdata/<name>.golden.yaml.
var scenarios = slices.Concat(routingScenarios, policyScenarios, meshScenarios, authzScenarios)

// routingScenarios are about protocols, subsets and routes.
var routingScenarios = []scenario{
	{
		name:  "http-port",
		about: "One HTTP service in the proxy's namespace: EDS cluster, RDS route config \"80\", a filter chain on its ClusterIP:80.",
		model: newModel(func() *mesh.Service {
			s := newService("shop", "web", "10.96.0.10", port(80, "http", meshv1alpha1.ProtocolHTTP, 8080))
			s.Endpoints = []mesh.Endpoint{
				endpoint("10.1.0.11", "web-a", "web", 80, 8080),
				endpoint("10.1.0.12", "web-b", "web", 80, 8080),
				func() mesh.Endpoint { e := endpoint("10.1.0.13", "web-c", "web", 80, 8080); e.Ready = false; return e }(),
			}
			return s
		}()),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			cla := findCLA(r, "outbound|80||web.shop.svc.cluster.local")
			if got, want := endpointsAt(cla, 0), []string{"10.1.0.11:8080", "10.1.0.12:8080"}; !slices.Equal(got, want) {
				t.Errorf("endpoints %v, want the ready ones %v", got, want)
			}
			vh := findVHost(findRouteConfig(r, "80"), "web.shop.svc.cluster.local:80")
			for _, d := range []string{"web", "web:80", "web.shop", "web.shop.svc:80", "web.shop.svc.cluster.local", "10.96.0.10:80"} {
				if !slices.Contains(vh.GetDomains(), d) {
					t.Errorf("virtual host domains %v lack %q", vh.GetDomains(), d)
				}
			}
			if findListener(r, "web.shop.svc.cluster.local:80") != nil {
				t.Errorf("an HTTP/1 port got a proxyless API listener")
			}
		},
	},
	{
		name:  "grpc-port",
		about: "A gRPC service: its cluster speaks HTTP/2, and proxyless clients get the API listener and route config <host>:<port>.",
		model: newModel(func() *mesh.Service {
			s := newService("shop", "catalog", "10.96.0.20", port(9090, "grpc", meshv1alpha1.ProtocolGRPC, 9090))
			s.Endpoints = []mesh.Endpoint{endpoint("10.1.0.21", "catalog-a", "catalog", 9090, 9090)}
			return s
		}()),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			const name = "catalog.shop.svc.cluster.local:9090"
			if findListener(r, name).GetApiListener() == nil {
				t.Fatalf("no API listener %s", name)
			}
			vh := findRouteConfig(r, name).GetVirtualHosts()
			if len(vh) != 1 || !slices.Equal(vh[0].GetDomains(), []string{name, "catalog.shop.svc.cluster.local"}) {
				t.Errorf("proxyless route config virtual hosts %v", vh)
			}
		},
	},
	{
		name:  "tcp-port",
		about: "A TCP service: tcp_proxy to its cluster, no route config for the port.",
		model: newModel(func() *mesh.Service {
			s := newService("shop", "db", "10.96.0.30", port(5432, "postgres", meshv1alpha1.ProtocolTCP, 5432))
			s.Endpoints = []mesh.Endpoint{endpoint("10.1.0.31", "db-0", "db", 5432, 5432)}
			return s
		}()),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			if findRouteConfig(r, "5432") != nil {
				t.Errorf("a TCP port got a route configuration")
			}
		},
	},
	{
		name:  "auto-port",
		about: "An AUTO port is treated as HTTP (the proxy detects the protocol); its cluster uses the caller's protocol.",
		model: newModel(func() *mesh.Service {
			s := newService("shop", "legacy", "10.96.0.40", port(8000, "", meshv1alpha1.ProtocolAuto, 0))
			s.Endpoints = []mesh.Endpoint{endpoint("10.1.0.41", "legacy-0", "legacy", 8000, 8001)}
			return s
		}()),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			if findRouteConfig(r, "8000") == nil {
				t.Errorf("an AUTO port got no route configuration")
			}
			if got := endpointsAt(findCLA(r, "outbound|8000||legacy.shop.svc.cluster.local"), 0); !slices.Equal(got, []string{"10.1.0.41:8001"}) {
				t.Errorf("endpoints %v, want the endpoint's own port 8001", got)
			}
		},
	},
	{
		name:  "subsets-weighted-split",
		about: "Subsets v1 and v2 (a cluster and an EDS each), a route splitting 90/10 between them.",
		model: newModel(withPolicy(func() *mesh.Service {
			s := newService("shop", "reviews", "10.96.0.50", port(9080, "http", meshv1alpha1.ProtocolHTTP, 9080))
			s.Subsets = []mesh.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}, {Name: "v2", Labels: map[string]string{"version": "v2"}}}
			a, b := endpoint("10.1.0.51", "reviews-v1", "reviews", 9080, 9080), endpoint("10.1.0.52", "reviews-v2", "reviews", 9080, 9080)
			a.Labels, b.Labels = map[string]string{"app": "reviews", "version": "v1"}, map[string]string{"app": "reviews", "version": "v2"}
			s.Endpoints = []mesh.Endpoint{a, b}
			return s
		}(), "reviews-split", 0, meshv1alpha1.TrafficPolicySpec{
			Routes: []meshv1alpha1.Route{{Name: "canary", Backends: []meshv1alpha1.Backend{
				{Subset: "v1", Weight: ptr[int32](90)}, {Subset: "v2", Weight: ptr[int32](10)},
			}}},
		})),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			if got := endpointsAt(findCLA(r, "outbound|9080|v2|reviews.shop.svc.cluster.local"), 0); !slices.Equal(got, []string{"10.1.0.52:9080"}) {
				t.Errorf("subset v2 endpoints %v", got)
			}
			rt := findVHost(findRouteConfig(r, "9080"), "reviews.shop.svc.cluster.local:9080").GetRoutes()[0]
			wc := rt.GetRoute().GetWeightedClusters().GetClusters()
			if len(wc) != 2 || wc[0].GetName() != "outbound|9080|v1|reviews.shop.svc.cluster.local" || wc[0].GetWeight().GetValue() != 90 || wc[1].GetWeight().GetValue() != 10 {
				t.Errorf("weighted clusters %v, want v1 90, v2 10", wc)
			}
		},
	},
	{
		name: "route-matches",
		about: `A header match to subset v2 (gRPC, so the proxyless route config has it too), then a route on path
		prefix + method + query parameter to another service, then the default route.`,
		model: newModel(
			withPolicy(func() *mesh.Service {
				s := newService("shop", "catalog", "10.96.0.20", port(9090, "grpc", meshv1alpha1.ProtocolGRPC, 9090))
				s.Subsets = []mesh.Subset{{Name: "v2", Labels: map[string]string{"version": "v2"}}}
				a := endpoint("10.1.0.21", "catalog-a", "catalog", 9090, 9090)
				b := endpoint("10.1.0.22", "catalog-b", "catalog", 9090, 9090)
				b.Labels = map[string]string{"version": "v2"}
				s.Endpoints = []mesh.Endpoint{a, b}
				return s
			}(), "catalog-routes", 0, meshv1alpha1.TrafficPolicySpec{
				Routes: []meshv1alpha1.Route{
					{Name: "beta-users", Matches: []meshv1alpha1.RouteMatch{{
						Headers: []meshv1alpha1.HeaderMatch{{Name: "X-User-Group", Exact: ptr("beta")}, {Name: "x-trace", Present: ptr(true)}},
					}}, Backends: []meshv1alpha1.Backend{{Subset: "v2"}}},
					{Name: "admin", Matches: []meshv1alpha1.RouteMatch{
						{
							Path:        &meshv1alpha1.PathMatch{Prefix: ptr("/catalog.Admin")},
							Method:      ptr[meshv1alpha1.HTTPMethod]("POST"),
							QueryParams: []meshv1alpha1.HeaderMatch{{Name: "debug", Exact: ptr("1")}},
						},
						{Path: &meshv1alpha1.PathMatch{Regex: ptr("/catalog\\.Admin[0-9]+/.*")}},
					}, Backends: []meshv1alpha1.Backend{{Name: "catalog-admin", Port: ptr[meshv1alpha1.PortNumber](9091)}}},
				},
			}),
			func() *mesh.Service {
				s := newService("shop", "catalog-admin", "10.96.0.25", port(9091, "grpc", meshv1alpha1.ProtocolGRPC, 9091))
				s.ExportTo = []string{"."}
				s.Endpoints = []mesh.Endpoint{endpoint("10.1.0.26", "catalog-admin-0", "catalog-admin", 9091, 9091)}
				return s
			}(),
		),
		proxy: client,
		check: func(t *testing.T, r *Resources) {
			for _, rc := range []string{"9090", "catalog.shop.svc.cluster.local:9090"} {
				routes := findVHost(findRouteConfig(r, rc), "catalog.shop.svc.cluster.local:9090").GetRoutes()
				if len(routes) != 4 {
					t.Fatalf("%s: %d routes, want beta-users, two admin matches and the default", rc, len(routes))
				}
				if h := routes[0].GetMatch().GetHeaders(); len(h) != 2 || h[0].GetName() != "x-user-group" {
					t.Errorf("%s: header matchers %v, want x-user-group first, lower case", rc, h)
				}
				if got := routes[1].GetRoute().GetCluster(); got != "outbound|9091||catalog-admin.shop.svc.cluster.local" {
					t.Errorf("%s: admin route to %q", rc, got)
				}
				if routes[3].GetMatch().GetPrefix() != "/" {
					t.Errorf("%s: last route is not the catch-all default", rc)
				}
			}
		},
	},
}

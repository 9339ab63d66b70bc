package router

import (
	"net/netip"
	"strconv"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/skeinmesh/skein/sidecar/http1"
)

// bigTable is 20 virtual hosts ("svc-<i>.shop.svc.cluster.local" and
// ":80" forms) of 50 routes each: prefix "/p<j>/" routes that also need
// header x-group: g<j> and query v=<j>, then a default route.
func bigTable(t testing.TB) *Table {
	rc := &routev3.RouteConfiguration{Name: "80"}
	for i := range 20 {
		host := "svc-" + strconv.Itoa(i) + ".shop.svc.cluster.local"
		vh := &routev3.VirtualHost{Name: host, Domains: []string{host, host + ":80"}}
		for j := range 49 {
			n := strconv.Itoa(j)
			vh.Routes = append(vh.Routes, &routev3.Route{
				Name: "r" + n,
				Match: &routev3.RouteMatch{
					PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/p" + n + "/"},
					Headers: []*routev3.HeaderMatcher{{
						Name:                 "x-group",
						HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "g" + n}}},
					}},
					QueryParameters: []*routev3.QueryParameterMatcher{{
						Name:                         "v",
						QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: n}}},
					}},
				},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c" + n},
					HashPolicy: []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
						Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: "x-group"},
					}}},
				}},
			})
		}
		vh.Routes = append(vh.Routes, &routev3.Route{
			Name:   "default",
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "default"}}},
		})
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: "any", Domains: []string{"*"}})
	tab, err := Compile(rc)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

const bigRequest = "GET /p47/items?a=b&v=47 HTTP/1.1\r\nHost: SVC-19.shop.svc.cluster.local:80\r\nUser-Agent: t\r\nX-Group: g47\r\n\r\n"

func TestRouteAllocs(t *testing.T) {
	tab := bigTable(t)
	head := parseHead(t, bigRequest)
	r := HTTP1(head)
	rt := tab.Route(r)
	if rt == nil || rt.Name != "r47" || rt.VirtualHost != "svc-19.shop.svc.cluster.local" {
		t.Fatalf("Route = %+v, want r47 of svc-19", rt)
	}
	src := netip.MustParseAddr("10.0.0.1")
	var buf []byte
	var h http1.Header
	if n := testing.AllocsPerRun(100, func() {
		r := HTTP1(head)
		rt = tab.Route(r)
		_ = rt.PickCluster(7)
		_, _ = rt.Hash(r, src)
		buf, _ = rt.RewritePath(buf[:0], r.Path())
	}); n != 0 {
		t.Errorf("Route, PickCluster, Hash, RewritePath allocate %v times per request", n)
	}
	redirect := oneRoute(t, `{match: {prefix: /p47}, redirect: {httpsRedirect: true, prefixRewrite: /q}}`)
	buf = redirect.Location(buf[:0], "http", r)
	if string(buf) != "https://SVC-19.shop.svc.cluster.local/q/items?a=b&v=47" {
		t.Errorf("Location = %s", buf)
	}
	if n := testing.AllocsPerRun(100, func() {
		buf = redirect.Location(buf[:0], "http", r)
	}); n != 0 {
		t.Errorf("Location allocates %v times", n)
	}
	edits := mustCompile(t, `{name: e, virtualHosts: [{name: v, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: c}, requestHeadersToAdd: [{header: {key: x-a, value: b}}], requestHeadersToRemove: [x-b]}]}]}`).VirtualHosts()[0].Routes[0]
	h.Add("x-b", "1")
	edits.RequestHeaders.Apply(&h) // grow the header's memory once
	if n := testing.AllocsPerRun(100, func() {
		h.Reset()
		h.Add("x-b", "1")
		edits.RequestHeaders.Apply(&h)
	}); n != 0 {
		t.Errorf("HeaderEdits.Apply allocates %v times", n)
	}
}

func BenchmarkRoute(b *testing.B) {
	tab := bigTable(b)
	r := HTTP1(parseHead(b, bigRequest))
	b.ReportAllocs()
	for b.Loop() {
		if tab.Route(r) == nil {
			b.Fatal("no route")
		}
	}
}

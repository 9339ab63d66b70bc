package router

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/skeinmesh/skein/sidecar/http1"
)

// oneRoute compiles a configuration whose only route is route (YAML
// flow of a Route without name) under domain "*".
func oneRoute(t *testing.T, route string) *Route {
	t.Helper()
	tab := mustCompile(t, `
name: t
virtualHosts:
- name: v
  domains: ["*"]
  routes:
  - `+route+`
`)
	return tab.VirtualHosts()[0].Routes[0]
}

func TestWeightedClusterDistribution(t *testing.T) {
	rt := oneRoute(t, `{match: {prefix: /}, route: {weightedClusters: {clusters: [{name: a, weight: 70}, {name: b, weight: 20}, {name: c, weight: 10}, {name: zero, weight: 0}]}}}`)
	if rt.Action != ActionWeightedClusters {
		t.Fatalf("Action = %v", rt.Action)
	}
	const n = 10000
	counts := map[string]int{}
	rng := rand.New(rand.NewPCG(1, 2))
	for range n {
		counts[rt.PickCluster(rng.Uint64())]++
	}
	// Binomial standard deviation at p=0.5 is 50 over 10k picks; 4% (8
	// sigma at worst) keeps a seeded test from flaking while catching a
	// wrong split.
	for name, share := range map[string]float64{"a": .7, "b": .2, "c": .1} {
		if got := float64(counts[name]) / n; math.Abs(got-share) > 0.04 {
			t.Errorf("cluster %s got %.3f of picks, want %.2f ± 0.04", name, got, share)
		}
	}
	if counts["zero"] != 0 {
		t.Errorf("weight 0 cluster picked %d times", counts["zero"])
	}
	// Picks are by cumulative range of rnd % total, as Envoy.
	for rnd, want := range map[uint64]string{0: "a", 69: "a", 70: "b", 89: "b", 90: "c", 99: "c", 100: "a"} {
		if got := rt.PickCluster(rnd); got != want {
			t.Errorf("PickCluster(%d) = %s, want %s", rnd, got, want)
		}
	}
	single := oneRoute(t, `{match: {prefix: /}, route: {cluster: only}}`)
	if single.Action != ActionCluster || single.PickCluster(12345) != "only" {
		t.Errorf("single cluster: %v %s", single.Action, single.PickCluster(12345))
	}
}

func TestRedirectLocation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		redirect string // RedirectAction, YAML flow
		match    string // path specifier
		scheme   string // request's scheme
		request  string
		want     string
		status   int
	}{
		{"https", `{httpsRedirect: true}`, `{prefix: /}`, "http", "GET foo.com /a?b=1", "https://foo.com/a?b=1", 301},
		{"https drops :80", `{httpsRedirect: true}`, `{prefix: /}`, "http", "GET foo.com:80 /a", "https://foo.com/a", 301},
		{"https keeps other port", `{httpsRedirect: true}`, `{prefix: /}`, "http", "GET foo.com:8080 /a", "https://foo.com:8080/a", 301},
		{"http drops :443", `{schemeRedirect: HTTP}`, `{prefix: /}`, "https", "GET foo.com:443 /a", "http://foo.com/a", 301},
		{"same scheme keeps :80", `{hostRedirect: bar.com}`, `{prefix: /}`, "http", "GET foo.com:80 /a", "http://bar.com/a", 301},
		{"port redirect", `{portRedirect: 8443, schemeRedirect: https}`, `{prefix: /}`, "http", "GET foo.com:80 /a", "https://foo.com:8443/a", 301},
		{"port redirect IPv6", `{portRedirect: 9}`, `{prefix: /}`, "http", "GET [::1]:80 /", "http://[::1]:9/", 301},
		{"path keeps query", `{pathRedirect: /new, responseCode: FOUND}`, `{prefix: /}`, "https", "GET h /old?q=1", "https://h/new?q=1", 302},
		{"path with query wins", `{pathRedirect: "/new?x=2", stripQuery: true}`, `{prefix: /}`, "http", "GET h /old?q=1", "http://h/new?x=2", 301},
		{"strip query", `{pathRedirect: /new, stripQuery: true, responseCode: SEE_OTHER}`, `{prefix: /}`, "http", "GET h /old?q=1", "http://h/new", 303},
		{"prefix rewrite", `{prefixRewrite: /v2, responseCode: TEMPORARY_REDIRECT}`, `{prefix: /v1}`, "http", "GET h /v1/items?id=3", "http://h/v2/items?id=3", 307},
		{"regex rewrite", `{regexRewrite: {pattern: {regex: "^/users/([0-9]+)$"}, substitution: "/u/\\1"}, responseCode: PERMANENT_REDIRECT}`, `{prefix: /users}`, "http", "GET h /users/42", "http://h/u/42", 308},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := oneRoute(t, `{match: `+tc.match+`, redirect: `+tc.redirect+`}`)
			if rt.Action != ActionRedirect {
				t.Fatalf("Action = %v", rt.Action)
			}
			if got := string(rt.Location(nil, tc.scheme, newReq(tc.request))); got != tc.want {
				t.Errorf("Location = %s, want %s", got, tc.want)
			}
			if rt.Redirect.Status != tc.status {
				t.Errorf("Status = %d, want %d", rt.Redirect.Status, tc.status)
			}
		})
	}
}

func TestDirectResponse(t *testing.T) {
	rt := oneRoute(t, `{match: {prefix: /}, directResponse: {status: 503, body: {inlineString: "no backends"}}, responseHeadersToAdd: [{header: {key: x-why, value: gone}}]}`)
	if rt.Action != ActionDirectResponse || rt.DirectResponse.Status != 503 || string(rt.DirectResponse.Body) != "no backends" {
		t.Errorf("direct response = %v %+v", rt.Action, rt.DirectResponse)
	}
	var h http1.Header
	rt.ResponseHeaders.Apply(&h)
	if string(h.Get("x-why")) != "gone" {
		t.Errorf("response headers of a direct response not edited: %q", h.Get("x-why"))
	}
	rt = oneRoute(t, `{match: {prefix: /}, directResponse: {status: 204}}`)
	if rt.DirectResponse.Status != 204 || rt.DirectResponse.Body != nil {
		t.Errorf("no body: %+v", rt.DirectResponse)
	}
}

func fields(h *http1.Header) [][2]string {
	var out [][2]string
	for n, v := range h.All() {
		out = append(out, [2]string{string(n), string(v)})
	}
	return out
}

func TestHeaderEdits(t *testing.T) {
	const cfg = `
name: t
mostSpecificHeaderMutationsWins: %v
requestHeadersToAdd: [{header: {key: x-level, value: config}, appendAction: OVERWRITE_IF_EXISTS_OR_ADD}]
requestHeadersToRemove: [x-remove-config]
virtualHosts:
- name: v
  domains: ["*"]
  requestHeadersToAdd: [{header: {key: x-level, value: vhost}, appendAction: OVERWRITE_IF_EXISTS_OR_ADD}]
  routes:
  - match: {prefix: /}
    requestHeadersToRemove: [x-old, x-level]
    requestHeadersToAdd:
    - {header: {key: x-level, value: route}, appendAction: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-append, value: two}}
    - {header: {key: x-absent, value: added}, appendAction: ADD_IF_ABSENT}
    - {header: {key: x-present, value: kept-not}, appendAction: ADD_IF_ABSENT}
    - {header: {key: x-over, value: new}, appendAction: OVERWRITE_IF_EXISTS}
    - {header: {key: x-over-missing, value: new}, appendAction: OVERWRITE_IF_EXISTS}
    - {header: {key: x-legacy, value: set}, append: false}
    - {header: {key: x-empty, value: ""}}
    - {header: {key: x-kept-empty, value: ""}, keepEmptyValue: true}
    - {header: {key: x-pct, value: "100%%%%"}}
    route:
      weightedClusters:
        clusters:
        - {name: a, weight: 1, requestHeadersToAdd: [{header: {key: x-level, value: cluster}, appendAction: OVERWRITE_IF_EXISTS_OR_ADD}, {header: {key: x-cluster, value: a}}]}
        - {name: b, weight: 1}
`
	start := func() *http1.Header {
		var h http1.Header
		for _, f := range [][2]string{{"X-Old", "1"}, {"X-Append", "one"}, {"X-Present", "here"}, {"X-Over", "old"},
			{"X-Legacy", "a"}, {"X-Legacy", "b"}, {"X-Remove-Config", "z"}} {
			h.Add(f[0], f[1])
		}
		return &h
	}
	for _, tc := range []struct {
		name         string
		mostSpecific bool
		cluster      int // index of the picked weighted cluster
		want         [][2]string
	}{
		{"least specific wins", false, 1, [][2]string{
			{"X-Append", "one"}, {"X-Present", "here"}, {"X-Over", "new"}, {"X-Legacy", "set"},
			{"x-level", "config"}, {"x-append", "two"}, {"x-absent", "added"}, {"x-kept-empty", ""}, {"x-pct", "100%"},
		}},
		{"most specific wins", true, 1, [][2]string{
			{"X-Append", "one"}, {"X-Present", "here"}, {"X-Over", "new"}, {"X-Legacy", "set"},
			{"x-level", "route"}, {"x-append", "two"}, {"x-absent", "added"}, {"x-kept-empty", ""}, {"x-pct", "100%"},
		}},
		{"cluster edits first", false, 0, [][2]string{
			{"X-Append", "one"}, {"X-Present", "here"}, {"X-Over", "new"}, {"X-Legacy", "set"},
			{"x-cluster", "a"}, {"x-level", "config"}, {"x-append", "two"}, {"x-absent", "added"}, {"x-kept-empty", ""}, {"x-pct", "100%"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := mustCompile(t, sprintf(cfg, tc.mostSpecific)).VirtualHosts()[0].Routes[0]
			h := start()
			rt.Clusters[tc.cluster].RequestHeaders.Apply(h)
			if got := fields(h); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("headers:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// *http1.Header is the header set the HTTP/1.1 path edits.
var _ Headers = (*http1.Header)(nil)

func TestRewritePath(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route string
		path  string
		want  string
	}{
		{"prefix", `{match: {prefix: /api/}, route: {cluster: c, prefixRewrite: /}}`, "/api/users", "/users"},
		{"prefix case-insensitive keeps rest", `{match: {prefix: /API, caseSensitive: false}, route: {cluster: c, prefixRewrite: /v2}}`, "/api/X", "/v2/X"},
		{"exact", `{match: {path: /old}, route: {cluster: c, prefixRewrite: /new}}`, "/old", "/new"},
		{"separated prefix", `{match: {pathSeparatedPrefix: /a}, route: {cluster: c, prefixRewrite: /b}}`, "/a/x", "/b/x"},
		{"regex route replaces whole path", `{match: {safeRegex: {regex: "/x.*"}}, route: {cluster: c, prefixRewrite: /y}}`, "/x/1", "/y"},
		{"regex rewrite all matches", `{match: {prefix: /}, route: {cluster: c, regexRewrite: {pattern: {regex: "o"}, substitution: "0"}}}`, "/foo/boo", "/f00/b00"},
		{"regex rewrite groups", `{match: {prefix: /}, route: {cluster: c, regexRewrite: {pattern: {regex: "^/(\\w+)/(\\w+)$"}, substitution: "/\\2/\\1/$"}}}`, "/a/b", "/b/a/$"},
		{"none", `{match: {prefix: /}, route: {cluster: c}}`, "/same", "/same"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := oneRoute(t, tc.route)
			got, changed := rt.RewritePath(nil, []byte(tc.path))
			if string(got) != tc.want || changed != (tc.name != "none") {
				t.Errorf("RewritePath(%s) = %s, %v; want %s", tc.path, got, changed, tc.want)
			}
		})
	}
}

func TestTimeoutsAndKnobs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		action  string // RouteAction fields after cluster
		timeout time.Duration
		idle    time.Duration
	}{
		{"unset is Envoy's 15s", ``, 15 * time.Second, 0},
		{"0s is none", `, timeout: 0s`, 0, 0},
		{"set", `, timeout: 2.5s, idleTimeout: 30s`, 2500 * time.Millisecond, 30 * time.Second},
		{"idle 0s disables", `, idleTimeout: 0s`, 15 * time.Second, Disabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := oneRoute(t, `{match: {prefix: /}, route: {cluster: c`+tc.action+`}}`)
			if rt.Timeout != tc.timeout || rt.IdleTimeout != tc.idle {
				t.Errorf("Timeout, IdleTimeout = %v, %v; want %v, %v", rt.Timeout, rt.IdleTimeout, tc.timeout, tc.idle)
			}
		})
	}
	rt := oneRoute(t, `{match: {prefix: /}, route: {cluster: c, hostRewriteLiteral: up.internal, maxStreamDuration: {maxStreamDuration: 3s, grpcTimeoutHeaderMax: 0s}, clusterNotFoundResponseCode: NOT_FOUND}}`)
	want := MaxStreamDuration{Max: 3 * time.Second, UseGRPCTimeout: true}
	if rt.MaxStreamDuration != want || rt.ClusterNotFoundStatus != 404 || rt.Clusters[0].HostRewrite != "up.internal" {
		t.Errorf("got %+v, %d, %q", rt.MaxStreamDuration, rt.ClusterNotFoundStatus, rt.Clusters[0].HostRewrite)
	}
}

func TestPerFilterConfigMostSpecificWins(t *testing.T) {
	tab := mustCompile(t, `
name: t
typedPerFilterConfig:
  f.global: {"@type": type.googleapis.com/google.protobuf.StringValue, value: config}
  f.shared: {"@type": type.googleapis.com/google.protobuf.StringValue, value: config}
virtualHosts:
- name: v
  domains: ["*"]
  typedPerFilterConfig:
    f.shared: {"@type": type.googleapis.com/google.protobuf.StringValue, value: vhost}
  routes:
  - match: {prefix: /}
    route: {cluster: c}
    typedPerFilterConfig:
      envoy.filters.http.fault: {"@type": type.googleapis.com/google.protobuf.StringValue, value: route}
`)
	pfc := tab.VirtualHosts()[0].Routes[0].PerFilterConfig
	if len(pfc) != 3 || pfc["f.shared"] == nil || pfc["envoy.filters.http.fault"] == nil || pfc["f.global"] == nil {
		t.Fatalf("PerFilterConfig = %v", pfc)
	}
	if v := string(pfc["f.shared"].GetValue()); v != "\n\x05vhost" {
		t.Errorf("f.shared = %q, want the virtual host's", v)
	}
}

func TestRetryPolicy(t *testing.T) {
	rt := oneRoute(t, `{match: {prefix: /}, route: {cluster: c, retryPolicy: {retryOn: "5xx, connect-failure,retriable-status-codes,unavailable", numRetries: 3, perTryTimeout: 0.5s, retryBackOff: {baseInterval: 0.05s}, retriableStatusCodes: [418]}}}`)
	want := &RetryPolicy{
		On:                   Retry5xx | RetryConnectFailure | RetryRetriableStatusCodes | RetryGRPCUnavailable,
		NumRetries:           3,
		PerTryTimeout:        500 * time.Millisecond,
		BackOffBase:          50 * time.Millisecond,
		BackOffMax:           500 * time.Millisecond,
		RetriableStatusCodes: []uint32{418},
	}
	if !reflect.DeepEqual(rt.Retry, want) {
		t.Errorf("Retry = %+v\nwant %+v", rt.Retry, want)
	}
	for status, retried := range map[int]bool{503: true, 418: true, 404: false, 409: false} {
		if rt.Retry.Retries(status) != retried {
			t.Errorf("Retries(%d) = %v", status, !retried)
		}
	}
	// Defaults: one retry, 25ms base, 250ms max; the virtual host's
	// policy applies to routes without one.
	tab := mustCompile(t, `
name: t
virtualHosts:
- name: v
  domains: ["*"]
  retryPolicy: {retryOn: gateway-error}
  routes:
  - {name: inherits, match: {prefix: /a}, route: {cluster: c}}
  - {name: own, match: {prefix: /}, route: {cluster: c, retryPolicy: {retryOn: reset}}}
`)
	inh, own := tab.VirtualHosts()[0].Routes[0].Retry, tab.VirtualHosts()[0].Routes[1].Retry
	if inh == nil || inh.On != RetryGatewayError || inh.NumRetries != 1 || inh.BackOffBase != 25*time.Millisecond || inh.BackOffMax != 250*time.Millisecond {
		t.Errorf("inherited = %+v", inh)
	}
	if own == nil || own.On != RetryReset {
		t.Errorf("own = %+v", own)
	}
	if oneRoute(t, `{match: {prefix: /}, route: {cluster: c}}`).Retry != nil {
		t.Error("no policy: Retry not nil")
	}
	// Istio's default policy: previous_hosts by name or typed_config.
	for _, pred := range []string{
		`{name: envoy.retry_host_predicates.previous_hosts}`,
		`{name: p, typedConfig: {"@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}`,
	} {
		rp := oneRoute(t, `{match: {prefix: /}, route: {cluster: c, retryPolicy: {retryOn: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", numRetries: 2, retriableStatusCodes: [503], hostSelectionRetryMaxAttempts: "5", retryHostPredicate: [`+pred+`]}}}`).Retry
		if !rp.PreviousHosts || rp.HostSelectionMaxAttempts != 5 || rp.NumRetries != 2 || !rp.Retries(503) || rp.Retries(502) {
			t.Errorf("%s: %+v", pred, rp)
		}
	}
}

func TestRetryGRPCAndBackOff(t *testing.T) {
	rp := &RetryPolicy{On: RetryGRPCUnavailable | RetryGRPCCancelled, BackOffBase: 25 * time.Millisecond, BackOffMax: 250 * time.Millisecond}
	for code, retried := range map[int]bool{14: true, 1: true, 4: false, 13: false, 8: false, 0: false, 2: false} {
		if rp.GRPCRetries(code) != retried {
			t.Errorf("GRPCRetries(%d) = %v", code, !retried)
		}
	}
	for _, tc := range []struct {
		name string
		n    int           // retry number
		u    float64       // the random number
		want time.Duration // the wait
	}{
		{"first retry, top of range", 1, 0.999999, 25 * time.Millisecond},
		{"second retry doubles", 2, 0.5, 25 * time.Millisecond},
		{"third retry", 3, 0.5, 50 * time.Millisecond},
		{"capped at max", 10, 0.5, 125 * time.Millisecond},
		{"no wait at zero", 4, 0, 0},
	} {
		if got := rp.BackOff(tc.n, tc.u).Round(time.Millisecond); got != tc.want {
			t.Errorf("%s: BackOff(%d, %v) = %v, want %v", tc.name, tc.n, tc.u, got, tc.want)
		}
	}
}

func TestHash(t *testing.T) {
	src := netip.MustParseAddr("10.1.0.5")
	x := xxhash.Sum64String
	combine := func(a, b uint64) uint64 { return (a<<1 | a>>63) ^ b }
	for _, tc := range []struct {
		name    string
		policy  string
		headers []string
		want    uint64
		ok      bool
	}{
		{"header", `[{header: {headerName: X-User}}]`, []string{"x-user: ann"}, x("ann"), true},
		{"header absent", `[{header: {headerName: x-user}}]`, nil, 0, false},
		{"cookie", `[{cookie: {name: cart, ttl: 3600s}}]`, []string{"cookie: a=1; cart=xyz; b=2"}, x("xyz"), true},
		{"source ip", `[{connectionProperties: {sourceIp: true}}]`, nil, x("10.1.0.5"), true},
		{"query", `[{queryParameter: {name: k}}]`, nil, x("v"), true},
		{"combined", `[{header: {headerName: x-a}}, {header: {headerName: x-b}}]`, []string{"x-a: 1", "x-b: 2"}, combine(x("1"), x("2")), true},
		{"terminal stops", `[{header: {headerName: x-a}, terminal: true}, {header: {headerName: x-b}}]`, []string{"x-a: 1", "x-b: 2"}, x("1"), true},
		{"terminal without value goes on", `[{header: {headerName: x-z}, terminal: true}, {header: {headerName: x-b}}]`, []string{"x-b: 2"}, x("2"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := oneRoute(t, `{match: {prefix: /}, route: {cluster: c, hashPolicy: `+tc.policy+`}}`)
			h, ok := rt.Hash(newReq("GET h /?k=v", tc.headers...), src)
			if h != tc.want || ok != tc.ok {
				t.Errorf("Hash = %x, %v; want %x, %v", h, ok, tc.want, tc.ok)
			}
		})
	}
}

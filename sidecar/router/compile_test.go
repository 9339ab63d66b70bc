package router

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	// The fault filter's config type, which the goldens carry in
	// typed_per_filter_config, must be known to protojson.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	"sigs.k8s.io/yaml"
)

func TestCompileErrors(t *testing.T) {
	const head = "name: \"80\"\nvirtualHosts:\n- name: v\n  domains: [\"*\"]\n  routes:\n"
	route := func(r string) string { return head + "  - " + r + "\n" }
	for _, tc := range []struct {
		name string
		cfg  string // RouteConfiguration YAML
		want string // the error, exactly
	}{
		{"bad regex", route(`{match: {prefix: /}, route: {cluster: c}}`) + `  - {match: {safeRegex: {regex: "(["}}, route: {cluster: c}}`,
			`route configuration "80": virtual_hosts[0].routes[1].match.safe_regex.regex: error parsing regexp: missing closing ]: ` + "`[)$`"},
		{"no path specifier", route(`{match: {headers: [{name: x, presentMatch: true}]}, route: {cluster: c}}`),
			`route configuration "80": virtual_hosts[0].routes[0].match: a path specifier (prefix, path, safe_regex or path_separated_prefix) is required`},
		{"connect matcher", route(`{match: {connectMatcher: {}}, route: {cluster: c}}`),
			`route configuration "80": virtual_hosts[0].routes[0].match.connect_matcher: not supported by skein-proxy`},
		{"runtime fraction", route(`{match: {prefix: /, runtimeFraction: {defaultValue: {numerator: 50}}}, route: {cluster: c}}`),
			`route configuration "80": virtual_hosts[0].routes[0].match.runtime_fraction: not supported by skein-proxy`},
		{"cluster header", route(`{match: {prefix: /}, route: {clusterHeader: x-cluster}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.cluster_header: not supported by skein-proxy`},
		{"cluster specifier plugin", route(`{match: {prefix: /}, route: {clusterSpecifierPlugin: p}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.cluster_specifier_plugin: not supported by skein-proxy`},
		{"non-forwarding", route(`{match: {prefix: /}, nonForwardingAction: {}}`),
			`route configuration "80": virtual_hosts[0].routes[0].non_forwarding_action: not supported by skein-proxy`},
		{"no action", route(`{match: {prefix: /}}`),
			`route configuration "80": virtual_hosts[0].routes[0]: an action (route, redirect or direct_response) is required`},
		{"header variable", route(`{match: {prefix: /}, route: {cluster: c}, requestHeadersToAdd: [{header: {key: x-ip, value: "%DOWNSTREAM_REMOTE_ADDRESS%"}}]}`),
			`route configuration "80": virtual_hosts[0].routes[0].request_headers_to_add[0].header.value: header value "%DOWNSTREAM_REMOTE_ADDRESS%" uses a %VARIABLE% substitution, which is not supported (write %% for a literal %)`},
		{"pseudo-header edit", route(`{match: {prefix: /}, route: {cluster: c}, requestHeadersToRemove: [":path"]}`),
			`route configuration "80": virtual_hosts[0].routes[0].request_headers_to_remove[0]: header ":path" may not be modified`},
		{"host edit", route(`{match: {prefix: /}, route: {cluster: c}, requestHeadersToAdd: [{header: {key: Host, value: x}}]}`),
			`route configuration "80": virtual_hosts[0].routes[0].request_headers_to_add[0].header.key: header "Host" may not be modified`},
		{"weights sum to zero", route(`{match: {prefix: /}, route: {weightedClusters: {clusters: [{name: a, weight: 0}]}}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.weighted_clusters.clusters: weights sum to 0; the sum must be between 1 and 2^32-1`},
		{"total weight mismatch", route(`{match: {prefix: /}, route: {weightedClusters: {totalWeight: 100, clusters: [{name: a, weight: 60}, {name: b, weight: 30}]}}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.weighted_clusters.total_weight: is 100 but the weights sum to 90`},
		{"weighted cluster header", route(`{match: {prefix: /}, route: {weightedClusters: {headerName: x-r, clusters: [{name: a, weight: 1}]}}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.weighted_clusters.header_name: not supported by skein-proxy`},
		{"unknown retry condition", route(`{match: {prefix: /}, route: {cluster: c, retryPolicy: {retryOn: "5xx,sometimes"}}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.retry_policy.retry_on: unknown retry condition "sometimes"`},
		{"retry host predicate", route(`{match: {prefix: /}, route: {cluster: c, retryPolicy: {retryOn: 5xx, retryHostPredicate: [{name: envoy.retry_host_predicates.omit_canary_hosts}]}}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.retry_policy.retry_host_predicate[0]: "envoy.retry_host_predicates.omit_canary_hosts" is not supported by skein-proxy (only envoy.retry_host_predicates.previous_hosts)`},
		{"retry priority", route(`{match: {prefix: /}, route: {cluster: c, retryPolicy: {retryOn: 5xx, retryPriority: {name: envoy.retry_priorities.previous_priorities}}}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.retry_policy.retry_priority: not supported by skein-proxy`},
		{"mirror", route(`{match: {prefix: /}, route: {cluster: c, requestMirrorPolicies: [{cluster: m}]}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.request_mirror_policies: not supported by skein-proxy`},
		{"filter state hash", route(`{match: {prefix: /}, route: {cluster: c, hashPolicy: [{filterState: {key: k}}]}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.hash_policy[0].filter_state: not supported by skein-proxy`},
		{"duplicate domain", "name: \"80\"\nvirtualHosts:\n- {name: a, domains: [Foo.com]}\n- {name: b, domains: [bar.com, foo.com]}\n",
			`route configuration "80": virtual_hosts[1].domains[1]: domain "foo.com" is also in virtual_hosts[0]`},
		{"wildcard in the middle", "name: \"80\"\nvirtualHosts:\n- {name: a, domains: [\"a.*.com\"]}\n",
			`route configuration "80": virtual_hosts[0].domains[0]: domain "a.*.com": a wildcard is allowed only as its first or last character`},
		{"require tls", "name: \"80\"\nvirtualHosts:\n- {name: a, domains: [a], requireTls: ALL}\n",
			`route configuration "80": virtual_hosts[0].require_tls: not supported by skein-proxy (only NONE)`},
		{"vhds", "name: \"80\"\nvhds: {configSource: {ads: {}}}\n",
			`route configuration "80": vhds: not supported by skein-proxy`},
		{"body from file", route(`{match: {prefix: /}, directResponse: {status: 200, body: {filename: /etc/passwd}}}`),
			`route configuration "80": virtual_hosts[0].routes[0].direct_response.body.filename: not supported by skein-proxy`},
		{"body too large", "name: \"80\"\nmaxDirectResponseBodySizeBytes: 3\nvirtualHosts:\n- name: v\n  domains: [\"*\"]\n  routes:\n  - {match: {prefix: /}, directResponse: {status: 200, body: {inlineString: four}}}\n",
			`route configuration "80": virtual_hosts[0].routes[0].direct_response.body: 4 bytes, more than max_direct_response_body_size_bytes (3)`},
		{"regex rewrite group", route(`{match: {prefix: /}, route: {cluster: c, regexRewrite: {pattern: {regex: "a"}, substitution: "\\1"}}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.regex_rewrite.substitution: \1 names a group the pattern does not have`},
		{"path separated prefix slash", route(`{match: {pathSeparatedPrefix: /a/}, route: {cluster: c}}`),
			`route configuration "80": virtual_hosts[0].routes[0].match.path_separated_prefix: must not contain '?' or '#' nor end with '/'`},
		{"custom string matcher", route(`{match: {prefix: /, headers: [{name: x, stringMatch: {custom: {name: c, typedConfig: {"@type": type.googleapis.com/google.protobuf.Empty}}}}]}, route: {cluster: c}}`),
			`route configuration "80": virtual_hosts[0].routes[0].match.headers[0].string_match.custom: not supported by skein-proxy`},
		{"prefix and regex rewrite", route(`{match: {prefix: /}, route: {cluster: c, prefixRewrite: /x, regexRewrite: {pattern: {regex: a}, substitution: b}}}`),
			`route configuration "80": virtual_hosts[0].routes[0].route.regex_rewrite: prefix_rewrite and regex_rewrite are both set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := Compile(parseRC(t, tc.cfg))
			if err == nil {
				t.Fatalf("Compile accepted it: %+v", tab)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

// TestCompilesControlPlaneOutput: every RouteConfiguration in the
// translator's golden files (what skein's control plane sends) compiles,
// so the proxy accepts what the control plane emits.
func TestCompilesControlPlaneOutput(t *testing.T) {
	files, err := filepath.Glob("../../internal/xds/translate/testdata/*.golden.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	total := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var golden struct {
			Routes []any `json:"routes"`
		}
		if err := yaml.Unmarshal(raw, &golden); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, r := range golden.Routes {
			y, err := yaml.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			tab, err := Compile(parseRC(t, string(y)))
			if err != nil {
				t.Errorf("%s: routes[%d]: %v", filepath.Base(f), i, err)
				continue
			}
			if len(tab.VirtualHosts()) == 0 {
				t.Errorf("%s: routes[%d]: no virtual hosts", filepath.Base(f), i)
			}
			total++
		}
	}
	if total < 30 {
		t.Errorf("compiled %d route configurations; the goldens hold at least 30", total)
	}
	t.Logf("compiled %d route configurations from %d golden files", total, len(files))
}

// TestControlPlaneRoutes routes requests through a golden configuration
// to check the control plane's and the proxy's readings agree: the beta
// header route, the method+query admin route, and the default.
func TestControlPlaneRoutes(t *testing.T) {
	raw, err := os.ReadFile("../../internal/xds/translate/testdata/route-matches.golden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Routes []map[string]any `json:"routes"`
	}
	if err := yaml.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	var tab *Table
	for _, r := range golden.Routes {
		if r["name"] == "9090" {
			y, _ := yaml.Marshal(r)
			tab = mustCompile(t, string(y))
		}
	}
	if tab == nil {
		t.Fatal(`no route configuration "9090"`)
	}
	for _, tc := range []struct {
		request string
		headers []string
		cluster string
	}{
		{"GET catalog.shop:9090 /items", []string{"x-user-group: beta", "x-trace: 1"}, "outbound|9090|v2|catalog.shop.svc.cluster.local"},
		{"GET catalog.shop:9090 /items", []string{"x-user-group: beta"}, "outbound|9090||catalog.shop.svc.cluster.local"},
		{"POST catalog /catalog.Admin/Reset?debug=1", nil, "outbound|9091||catalog-admin.shop.svc.cluster.local"},
		{"POST 10.96.0.20:9090 /catalog.Admin7/x", nil, "outbound|9091||catalog-admin.shop.svc.cluster.local"},
		{"POST catalog /catalog.AdminX?debug=1", nil, "outbound|9090||catalog.shop.svc.cluster.local"},
		{"GET elsewhere.example:9090 /", nil, "PassthroughCluster"},
	} {
		rt := tab.Route(newReq(tc.request, tc.headers...))
		if rt == nil || rt.PickCluster(0) != tc.cluster || rt.Timeout != 0 {
			t.Errorf("%s %v: got %+v, want %s with no timeout", tc.request, tc.headers, rt, tc.cluster)
		}
	}
}

// TestCompileRefusesUnknownFields: fields from a newer API than this
// build knows arrive as unknown fields, and are refused rather than
// ignored.
func TestCompileRefusesUnknownFields(t *testing.T) {
	rc := parseRC(t, "name: x\nvirtualHosts: [{name: v, domains: ['*'], routes: [{match: {prefix: /}, route: {cluster: c}}]}]\n")
	// Field 999, varint 1.
	rc.VirtualHosts[0].Routes[0].GetRoute().ProtoReflect().SetUnknown([]byte{0xb8, 0x3e, 0x01})
	_, err := Compile(rc)
	want := `route configuration "x": virtual_hosts[0].routes[0].route: fields unknown to skein-proxy`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

// TestCompileGeneratedValidation: the proto's own validation rules apply
// too, for what the router's checks do not cover.
func TestCompileGeneratedValidation(t *testing.T) {
	_, err := Compile(parseRC(t, "name: x\nvirtualHosts: [{name: v, domains: ['*'], routes: [{match: {prefix: /, headers: [{name: \"bad\\nname\", presentMatch: true}]}, route: {cluster: c}}]}]\n"))
	if err == nil || !strings.Contains(err.Error(), `route configuration "x": `) || !strings.Contains(err.Error(), "Name") {
		t.Errorf("error = %v, want the generated validation's complaint about the header name", err)
	}
}

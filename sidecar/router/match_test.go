package router

import "testing"

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		name    string
		match   string   // RouteMatch, YAML flow
		request string   // "METHOD authority target"
		headers []string // "name: value"
		want    bool
	}{
		{"prefix", `{prefix: /api}`, "GET h /api/v1", nil, true},
		{"prefix is bytewise", `{prefix: /api}`, "GET h /apis", nil, true},
		{"prefix case-sensitive by default", `{prefix: /api}`, "GET h /API/v1", nil, false},
		{"prefix case-insensitive", `{prefix: /api, caseSensitive: false}`, "GET h /API/v1", nil, true},
		{"prefix ignores the query", `{prefix: "/a?x"}`, "GET h /a?x=1", nil, false},
		{"path exact", `{path: /a/b}`, "GET h /a/b?q=1", nil, true},
		{"path exact not prefix", `{path: /a/b}`, "GET h /a/b/c", nil, false},
		{"path case-insensitive", `{path: /a/B, caseSensitive: false}`, "GET h /A/b", nil, true},
		{"regex full match", `{safeRegex: {regex: "/v[0-9]+"}}`, "GET h /v12", nil, true},
		{"regex must match whole path", `{safeRegex: {regex: "/v[0-9]+"}}`, "GET h /v12/x", nil, false},
		{"regex not on query", `{safeRegex: {regex: "/v1.*"}}`, "GET h /v1?z", nil, true},
		{"regex ignores case_sensitive", `{safeRegex: {regex: "/abc"}, caseSensitive: false}`, "GET h /ABC", nil, false},
		{"separated prefix exact", `{pathSeparatedPrefix: /api}`, "GET h /api", nil, true},
		{"separated prefix segment", `{pathSeparatedPrefix: /api}`, "GET h /api/x", nil, true},
		{"separated prefix not partial segment", `{pathSeparatedPrefix: /api}`, "GET h /apis", nil, false},
		{"separated prefix with query", `{pathSeparatedPrefix: /api}`, "GET h /api?x", nil, true},
		{"header exact", `{prefix: /, headers: [{name: x-a, stringMatch: {exact: v}}]}`, "GET h /", []string{"x-a: v"}, true},
		{"header exact mismatch", `{prefix: /, headers: [{name: x-a, stringMatch: {exact: v}}]}`, "GET h /", []string{"x-a: w"}, false},
		{"header name case-insensitive", `{prefix: /, headers: [{name: X-A, stringMatch: {exact: v}}]}`, "GET h /", []string{"x-a: v"}, true},
		{"header absent", `{prefix: /, headers: [{name: x-a, stringMatch: {exact: v}}]}`, "GET h /", nil, false},
		{"header prefix", `{prefix: /, headers: [{name: x-a, stringMatch: {prefix: ab}}]}`, "GET h /", []string{"x-a: abc"}, true},
		{"header suffix", `{prefix: /, headers: [{name: x-a, stringMatch: {suffix: bc}}]}`, "GET h /", []string{"x-a: abc"}, true},
		{"header contains", `{prefix: /, headers: [{name: x-a, stringMatch: {contains: b}}]}`, "GET h /", []string{"x-a: abc"}, true},
		{"header contains mismatch", `{prefix: /, headers: [{name: x-a, stringMatch: {contains: z}}]}`, "GET h /", []string{"x-a: abc"}, false},
		{"header ignore_case", `{prefix: /, headers: [{name: x-a, stringMatch: {exact: AbC, ignoreCase: true}}]}`, "GET h /", []string{"x-a: aBc"}, true},
		{"header regex", `{prefix: /, headers: [{name: x-a, stringMatch: {safeRegex: {regex: "a.c"}}}]}`, "GET h /", []string{"x-a: abc"}, true},
		{"header regex full", `{prefix: /, headers: [{name: x-a, stringMatch: {safeRegex: {regex: "b"}}}]}`, "GET h /", []string{"x-a: abc"}, false},
		{"header present", `{prefix: /, headers: [{name: x-a, presentMatch: true}]}`, "GET h /", []string{"x-a: "}, true},
		{"header present absent", `{prefix: /, headers: [{name: x-a, presentMatch: true}]}`, "GET h /", nil, false},
		{"header present false matches absence", `{prefix: /, headers: [{name: x-a, presentMatch: false}]}`, "GET h /", nil, true},
		{"header present inverted", `{prefix: /, headers: [{name: x-a, presentMatch: true, invertMatch: true}]}`, "GET h /", nil, true},
		{"header present inverted present", `{prefix: /, headers: [{name: x-a, presentMatch: true, invertMatch: true}]}`, "GET h /", []string{"x-a: 1"}, false},
		{"header invert", `{prefix: /, headers: [{name: x-a, stringMatch: {exact: v}, invertMatch: true}]}`, "GET h /", []string{"x-a: w"}, true},
		{"header invert absent still fails", `{prefix: /, headers: [{name: x-a, stringMatch: {exact: v}, invertMatch: true}]}`, "GET h /", nil, false},
		{"header missing as empty", `{prefix: /, headers: [{name: x-a, stringMatch: {exact: ""}, treatMissingHeaderAsEmpty: true}]}`, "GET h /", nil, true},
		{"header no specifier is presence", `{prefix: /, headers: [{name: x-a}]}`, "GET h /", []string{"x-a: q"}, true},
		{"header range", `{prefix: /, headers: [{name: x-n, rangeMatch: {start: 10, end: 20}}]}`, "GET h /", []string{"x-n: 19"}, true},
		{"header range end exclusive", `{prefix: /, headers: [{name: x-n, rangeMatch: {start: 10, end: 20}}]}`, "GET h /", []string{"x-n: 20"}, false},
		{"all headers must match", `{prefix: /, headers: [{name: x-a, presentMatch: true}, {name: x-b, presentMatch: true}]}`, "GET h /", []string{"x-a: 1"}, false},
		{":method", `{prefix: /, headers: [{name: ":method", stringMatch: {exact: POST}}]}`, "POST h /", nil, true},
		{":method mismatch", `{prefix: /, headers: [{name: ":method", stringMatch: {exact: POST}}]}`, "GET h /", nil, false},
		{":authority", `{prefix: /, headers: [{name: ":authority", stringMatch: {suffix: ".svc"}}]}`, "GET a.svc /", nil, true},
		{":path has the query", `{prefix: /, headers: [{name: ":path", stringMatch: {exact: "/a?b=1"}}]}`, "GET h /a?b=1", nil, true},
		{"grpc", `{prefix: /, grpc: {}}`, "POST h /s/M", []string{"content-type: application/grpc+proto"}, true},
		{"grpc bare", `{prefix: /, grpc: {}}`, "POST h /s/M", []string{"content-type: application/grpc"}, true},
		{"grpc-web is not grpc", `{prefix: /, grpc: {}}`, "POST h /s/M", []string{"content-type: application/grpc-web"}, false},
		{"grpc not", `{prefix: /, grpc: {}}`, "POST h /s/M", []string{"content-type: application/json"}, false},
		{"query exact", `{prefix: /, queryParameters: [{name: debug, stringMatch: {exact: "1"}}]}`, "GET h /x?a=b&debug=1", nil, true},
		{"query first occurrence", `{prefix: /, queryParameters: [{name: debug, stringMatch: {exact: "1"}}]}`, "GET h /x?debug=2&debug=1", nil, false},
		{"query raw, not decoded", `{prefix: /, queryParameters: [{name: "a b", stringMatch: {exact: "c/d"}}]}`, "GET h /x?a%20b=c%2Fd", nil, false},
		{"query raw name and value", `{prefix: /, queryParameters: [{name: "a%20b", stringMatch: {exact: "c%2Fd"}}]}`, "GET h /x?a%20b=c%2Fd", nil, true},
		{"query present false when present", `{prefix: /, queryParameters: [{name: debug, presentMatch: false}]}`, "GET h /x?debug=1", nil, false},
		{"query absent", `{prefix: /, queryParameters: [{name: debug, stringMatch: {exact: "1"}}]}`, "GET h /x", nil, false},
		{"query present", `{prefix: /, queryParameters: [{name: debug, presentMatch: true}]}`, "GET h /x?debug", nil, true},
		{"query present false", `{prefix: /, queryParameters: [{name: debug, presentMatch: false}]}`, "GET h /x?other=1", nil, true},
		{"query regex", `{prefix: /, queryParameters: [{name: v, stringMatch: {safeRegex: {regex: "[0-9]+"}}}]}`, "GET h /x?v=42", nil, true},
		{"query prefix ignore_case", `{prefix: /, queryParameters: [{name: v, stringMatch: {prefix: AB, ignoreCase: true}}]}`, "GET h /x?v=abc", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := mustCompile(t, `
name: t
virtualHosts:
- name: v
  domains: ["*"]
  routes:
  - name: hit
    match: `+tc.match+`
    route: {cluster: c}
`)
			got := tab.Route(newReq(tc.request, tc.headers...)) != nil
			if got != tc.want {
				t.Errorf("match %s on %q %v = %v, want %v", tc.match, tc.request, tc.headers, got, tc.want)
			}
		})
	}
}

// TestHTTP1Request routes a parsed HTTP/1.1 head through the adapter,
// including :path for an absolute-form target.
func TestHTTP1Request(t *testing.T) {
	tab := mustCompile(t, `
name: t
virtualHosts:
- name: v
  domains: [example.com]
  routes:
  - name: full
    match:
      prefix: /a
      headers:
      - {name: ":path", stringMatch: {exact: "/a/b?c=d"}}
      - {name: ":method", stringMatch: {exact: PUT}}
      - {name: x-user, stringMatch: {exact: ann}}
      queryParameters: [{name: c, stringMatch: {exact: d}}]
    route: {cluster: c}
`)
	for _, raw := range []string{
		"PUT /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-User: ann\r\n\r\n",
		"PUT http://example.com/a/b?c=d HTTP/1.1\r\nHost: other\r\nX-User: ann\r\n\r\n",
	} {
		if got := routeName(tab, HTTP1(parseHead(t, raw))); got != "full" {
			t.Errorf("%q: got %s, want full", raw, got)
		}
	}
	if got := routeName(tab, HTTP1(parseHead(t, "PUT /a/b?c=e HTTP/1.1\r\nHost: example.com\r\nX-User: ann\r\n\r\n"))); got != "<none>" {
		t.Errorf("query mismatch: got %s", got)
	}
}

package router

import "testing"

func TestVirtualHostSelection(t *testing.T) {
	tab := mustCompile(t, `
name: "80"
virtualHosts:
- name: exact
  domains: [foo.com, "foo.com:8080", "[::1]:80"]
- name: suffix-short
  domains: ["*.com"]
- name: suffix-long
  domains: ["*.bar.foo.com"]
- name: suffix-mid
  domains: ["*.foo.com"]
- name: prefix-short
  domains: ["foo*"]
- name: prefix-long
  domains: ["foo.bar.*"]
- name: any
  domains: ["*"]
`)
	for _, tc := range []struct {
		name      string
		authority string // request's authority
		want      string // virtual host name
	}{
		{"exact", "foo.com", "exact"},
		{"exact is case-insensitive", "FOO.Com", "exact"},
		{"exact with port", "foo.com:8080", "exact"},
		{"port is part of the match", "foo.com:9090", "prefix-short"},
		{"port defeats a suffix wildcard", "x.bar.com:9090", "any"},
		{"IPv6 literal with port", "[::1]:80", "exact"},
		{"longest suffix wildcard wins", "a.bar.foo.com", "suffix-long"},
		{"shorter suffix wildcard", "a.foo.com", "suffix-mid"},
		{"suffix before prefix", "foo.bar.com", "suffix-short"},
		{"wildcard does not match empty", "bar.foo.com", "suffix-mid"},
		{"suffix wildcard needs a label", ".foo.com", "suffix-short"},
		{"longest prefix wildcard", "foo.bar.baz", "prefix-long"},
		{"shorter prefix wildcard", "foo-x.org", "prefix-short"},
		{"prefix wildcard with port", "foo.bar.x:80", "prefix-long"},
		{"catch-all", "example.org", "any"},
		{"catch-all with port", "example.org:80", "any"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vh := tab.VirtualHost([]byte(tc.authority))
			if vh == nil || vh.Name != tc.want {
				t.Errorf("VirtualHost(%q) = %v, want %s", tc.authority, vh, tc.want)
			}
		})
	}
}

func TestIgnorePortInHostMatching(t *testing.T) {
	y := `
name: x
ignorePortInHostMatching: %v
virtualHosts:
- name: foo
  domains: [foo.com]
  routes: [{name: r, match: {prefix: /}, route: {cluster: c}}]
`
	with := mustCompile(t, sprintf(y, true))
	without := mustCompile(t, sprintf(y, false))
	r := newReq("GET foo.com:8080 /")
	if got := routeName(with, r); got != "r" {
		t.Errorf("ignore_port_in_host_matching: got %s, want r", got)
	}
	if got := routeName(without, r); got != "<none>" {
		t.Errorf("port kept: got %s, want no route", got)
	}
	if got := routeName(with, newReq("GET [::1] /")); got != "<none>" {
		t.Errorf("bare IPv6 literal: got %s", got)
	}
}

func TestNoVirtualHostNoRoute(t *testing.T) {
	tab := mustCompile(t, `
name: x
virtualHosts:
- name: foo
  domains: [foo.com]
  routes: [{name: r, match: {prefix: /api}, route: {cluster: c}}]
`)
	if got := routeName(tab, newReq("GET bar.com /api")); got != "<none>" {
		t.Errorf("unknown host: got route %s", got)
	}
	if got := routeName(tab, newReq("GET foo.com /other")); got != "<none>" {
		t.Errorf("unmatched path: got route %s", got)
	}
}

func TestRouteOrder(t *testing.T) {
	tab := mustCompile(t, `
name: x
virtualHosts:
- name: v
  domains: ["*"]
  routes:
  - {name: first, match: {prefix: /a}, route: {cluster: c1}}
  - {name: shadowed, match: {path: /a/b}, route: {cluster: c2}}
  - {name: exact, match: {path: /b}, route: {cluster: c3}}
  - {name: rest, match: {prefix: /}, route: {cluster: c4}}
`)
	for _, tc := range []struct{ path, want string }{
		{"/a/b", "first"}, // first match wins, not the most specific
		{"/abc", "first"},
		{"/b", "exact"},
		{"/b/c", "rest"},
		{"/", "rest"},
	} {
		if got := routeName(tab, newReq("GET h "+tc.path)); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.path, got, tc.want)
		}
	}
}

package router

import (
	"bufio"
	"fmt"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/skeinmesh/skein/sidecar/http1"
)

// parseRC reads a RouteConfiguration written as YAML of its protojson
// form, as the translator's golden files are.
func parseRC(t testing.TB, y string) *routev3.RouteConfiguration {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("yaml: %v", err)
	}
	rc := &routev3.RouteConfiguration{}
	if err := protojson.Unmarshal(j, rc); err != nil {
		t.Fatalf("protojson: %v\n%s", err, j)
	}
	return rc
}

func mustCompile(t testing.TB, y string) *Table {
	t.Helper()
	tab, err := Compile(parseRC(t, y))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tab
}

// req is a Request for tests: "GET example.com /a/b?x=1" plus headers.
type req struct {
	method, authority, path, query string
	hasQuery                       bool
	headers                        [][2]string
}

// newReq builds a request from "METHOD authority target" and
// "name: value" header lines.
func newReq(line string, headers ...string) *req {
	f := strings.Fields(line)
	r := &req{method: f[0], authority: f[1], path: f[2]}
	if i := strings.IndexByte(r.path, '?'); i >= 0 {
		r.path, r.query, r.hasQuery = r.path[:i], r.path[i+1:], true
	}
	for _, h := range headers {
		n, v, _ := strings.Cut(h, ":")
		r.headers = append(r.headers, [2]string{strings.ToLower(n), strings.TrimSpace(v)})
	}
	return r
}

func (r *req) Method() []byte    { return []byte(r.method) }
func (r *req) Authority() []byte { return []byte(r.authority) }
func (r *req) Path() []byte      { return []byte(r.path) }
func (r *req) Query() []byte {
	if !r.hasQuery {
		return nil
	}
	return []byte(r.query)
}

func (r *req) Header(name string) ([]byte, bool) {
	if name == ":path" {
		if r.hasQuery {
			return []byte(r.path + "?" + r.query), true
		}
		return []byte(r.path), true
	}
	for _, h := range r.headers {
		if h[0] == name {
			return []byte(h[1]), true
		}
	}
	return nil, false
}

// parseHead parses a raw HTTP/1.1 request head.
func parseHead(t testing.TB, raw string) *http1.RequestHead {
	t.Helper()
	h := &http1.RequestHead{}
	if err := http1.ParseRequestHead(bufio.NewReader(strings.NewReader(raw)), h); err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return h
}

// routeName is the name of the route r gets, "<none>" if none.
func routeName(tab *Table, r Request) string {
	rt := tab.Route(r)
	if rt == nil {
		return "<none>"
	}
	return rt.Name
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

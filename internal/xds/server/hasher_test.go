package server

import (
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

func TestHasher(t *testing.T) {
	h := newHasher()
	a := &routev3.RouteConfiguration{Name: "80"}
	b := &routev3.RouteConfiguration{Name: "80", VirtualHosts: []*routev3.VirtualHost{{Name: "web", Domains: []string{"web"}}}}
	va, _ := h.hash(a)
	vb, _ := h.hash(b)
	if va == vb || va == "" {
		t.Fatalf("different contents hash alike: %q, %q", va, vb)
	}
	twin := &routev3.RouteConfiguration{Name: "80"}
	if v, _ := h.hash(twin); v != va {
		t.Errorf("equal contents in another object hash to %q, want %q", v, va)
	}
	h.rotate()
	if len(h.cur) != 0 {
		t.Errorf("rotate kept %d objects alive", len(h.cur))
	}
	if v, _ := h.hash(a); v != va {
		t.Errorf("after a rotation: %q, want %q", v, va)
	}
}

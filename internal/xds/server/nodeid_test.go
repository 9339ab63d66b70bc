package server

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skeinmesh/skein/internal/mesh"
)

func TestParseNodeID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want mesh.Proxy // zero when the ID is refused
	}{
		{name: "sidecar", id: "sidecar~10.1.2.3~web-7d9f.shop~shop.svc.cluster.local",
			want: mesh.Proxy{ID: "sidecar~10.1.2.3~web-7d9f.shop~shop.svc.cluster.local", Namespace: "shop", Pod: "web-7d9f", IP: "10.1.2.3"}},
		{name: "sidecar IPv6", id: "sidecar~fd00::1~web.shop~shop.svc.cluster.local",
			want: mesh.Proxy{ID: "sidecar~fd00::1~web.shop~shop.svc.cluster.local", Namespace: "shop", Pod: "web", IP: "fd00::1"}},
		{name: "other cluster domain", id: "sidecar~10.1.2.3~web.shop~shop.svc.example.org",
			want: mesh.Proxy{ID: "sidecar~10.1.2.3~web.shop~shop.svc.example.org", Namespace: "shop", Pod: "web", IP: "10.1.2.3"}},
		{name: "proxyless has no pod", id: "proxyless~10.1.2.3~client.shop~shop.svc.cluster.local",
			want: mesh.Proxy{ID: "proxyless~10.1.2.3~client.shop~shop.svc.cluster.local", Namespace: "shop", IP: "10.1.2.3"}},
		{name: "empty", id: ""},
		{name: "three fields", id: "sidecar~10.1.2.3~web.shop"},
		{name: "unknown kind", id: "router~10.1.2.3~web.shop~shop.svc.cluster.local"},
		{name: "bad ip", id: "sidecar~10.1.2~web.shop~shop.svc.cluster.local"},
		{name: "no namespace in workload", id: "sidecar~10.1.2.3~web~shop.svc.cluster.local"},
		{name: "empty pod", id: "sidecar~10.1.2.3~.shop~shop.svc.cluster.local"},
		{name: "domain names another namespace", id: "sidecar~10.1.2.3~web.shop~other.svc.cluster.local"},
		{name: "domain without cluster suffix", id: "sidecar~10.1.2.3~web.shop~shop.svc."},
		{name: "uppercase namespace", id: "sidecar~10.1.2.3~web.Shop~Shop.svc.cluster.local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNodeID(tt.id)
			if tt.want == (mesh.Proxy{}) {
				if err == nil {
					t.Fatalf("ParseNodeID(%q) = %+v, want an error", tt.id, got)
				}
				if status.Code(err) != codes.InvalidArgument {
					t.Errorf("code = %v, want InvalidArgument", status.Code(err))
				}
				if msg := status.Convert(err).Message(); !strings.Contains(msg, "sidecar~<podIP>~<pod>.<namespace>~<namespace>.svc.cluster.local") {
					t.Errorf("message %q does not name the expected form", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseNodeID(%q): %v", tt.id, err)
			}
			if got != tt.want {
				t.Errorf("ParseNodeID(%q) = %+v, want %+v", tt.id, got, tt.want)
			}
		})
	}
}

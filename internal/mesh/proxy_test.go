package mesh

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestProxyFromPod(t *testing.T) {
	tests := []struct {
		name string
		// ip is the pod's status.podIP.
		ip string
		// want is the proxy.
		want Proxy
	}{
		{
			name: "running pod",
			ip:   "10.0.0.7",
			want: Proxy{ID: "sidecar~10.0.0.7~catalog-1.shop~shop.svc.cluster.local", Namespace: "shop", Pod: "catalog-1", IP: "10.0.0.7"},
		},
		{
			name: "IPv6 pod",
			ip:   "fd00::7",
			want: Proxy{ID: "sidecar~fd00::7~catalog-1.shop~shop.svc.cluster.local", Namespace: "shop", Pod: "catalog-1", IP: "fd00::7"},
		},
		{
			name: "pod without an IP yet",
			want: Proxy{ID: "sidecar~~catalog-1.shop~shop.svc.cluster.local", Namespace: "shop", Pod: "catalog-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pod("shop", "catalog-1", "catalog", nil)
			p.Status = corev1.PodStatus{PodIP: tt.ip}
			if got := ProxyFromPod(&p); got != tt.want {
				t.Errorf("ProxyFromPod = %+v, want %+v", got, tt.want)
			}
			if got := NodeID(&p); got != tt.want.ID {
				t.Errorf("NodeID = %q, want %q", got, tt.want.ID)
			}
		})
	}
}

package admin

import (
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TestClustersJSONIsEnvoys: ?format=json, written without admin.v3's
// messages, reads back with protojson as exactly the admin.v3.Clusters
// those messages make: every health flag, zero and non-zero counts,
// weights and priorities, a pipe address, and no cluster at all.
func TestClustersJSONIsEnvoys(t *testing.T) {
	cases := []struct {
		name string
		// clusters are written; want is admin.v3's form of them.
		clusters []ClusterStatus
		want     *adminv3.Clusters
	}{
		{"none", nil, &adminv3.Clusters{}},
		{"every flag", []ClusterStatus{
			{Name: "a", Hosts: []HostStatus{
				{Address: "10.0.0.1:8080", ActiveConnections: 2, ActiveRequests: 0, Weight: 1},
				{Address: "[fd00::1]:80", HealthFlags: []string{FlagFailedEDSHealth, FlagFailedOutlierCheck, FlagFailedActiveHC, FlagPendingDynamicRemoval}, Priority: 2},
				{Address: "10.0.0.3:80", HealthFlags: []string{FlagDegradedEDSHealth}, ActiveRequests: 1 << 40},
				{Address: "10.0.0.4:80", HealthFlags: []string{FlagEDSDraining}},
				{Address: "/run/app.sock"},
			}},
			{Name: "empty"},
		}, &adminv3.Clusters{ClusterStatuses: []*adminv3.ClusterStatus{
			{Name: "a", HostStatuses: []*adminv3.HostStatus{
				host("10.0.0.1", 8080, 2, 0, 1, 0, &adminv3.HostHealthStatus{EdsHealthStatus: corev3.HealthStatus_HEALTHY}),
				host("fd00::1", 80, 0, 0, 0, 2, &adminv3.HostHealthStatus{EdsHealthStatus: corev3.HealthStatus_UNHEALTHY,
					FailedOutlierCheck: true, FailedActiveHealthCheck: true, PendingDynamicRemoval: true}),
				host("10.0.0.3", 80, 0, 1<<40, 0, 0, &adminv3.HostHealthStatus{EdsHealthStatus: corev3.HealthStatus_DEGRADED}),
				host("10.0.0.4", 80, 0, 0, 0, 0, &adminv3.HostHealthStatus{EdsHealthStatus: corev3.HealthStatus_DRAINING}),
				{
					Address: &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/app.sock"}}},
					Stats: []*adminv3.SimpleMetric{
						{Type: adminv3.SimpleMetric_GAUGE, Name: "cx_active"},
						{Type: adminv3.SimpleMetric_GAUGE, Name: "rq_active"},
					},
					HealthStatus: &adminv3.HostHealthStatus{EdsHealthStatus: corev3.HealthStatus_HEALTHY},
				},
			}},
			{Name: "empty"},
		}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := clustersJSON(tc.clusters)
			if err != nil {
				t.Fatal(err)
			}
			var got adminv3.Clusters
			if err := protojson.Unmarshal(b, &got); err != nil {
				t.Fatalf("not an admin.v3.Clusters: %v\n%s", err, b)
			}
			if !proto.Equal(&got, tc.want) {
				t.Errorf("read back:\n%s\nwant:\n%s", protojson.Format(&got), protojson.Format(tc.want))
			}
		})
	}
}

func host(ip string, port uint32, cx, rq uint64, weight, priority uint32, hs *adminv3.HostHealthStatus) *adminv3.HostStatus {
	return &adminv3.HostStatus{
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}},
		Stats: []*adminv3.SimpleMetric{
			{Type: adminv3.SimpleMetric_GAUGE, Name: "cx_active", Value: cx},
			{Type: adminv3.SimpleMetric_GAUGE, Name: "rq_active", Value: rq},
		},
		HealthStatus: hs,
		Weight:       weight,
		Priority:     priority,
	}
}

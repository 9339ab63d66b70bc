package upstream

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestCheckAssignment: CheckAssignment accepts what SetAssignment applies
// and refuses what it refuses, with the same message naming the assignment
// and the field, and applies nothing.
func TestCheckAssignment(t *testing.T) {
	m := NewManager()
	defer m.Close()
	if err := m.Update([]*clusterv3.Cluster{edsCluster("web")}); err != nil {
		t.Fatal(err)
	}
	c := m.Get("web")
	good := assignment(t, "web", "10.0.0.1:80")
	if err := m.SetAssignment(good); err != nil {
		t.Fatal(err)
	}
	badAddr := assignment(t, "web", "10.0.0.2:80", "db.example:80")
	zeroWeight := assignment(t, "web", "10.0.0.2:80")
	zeroWeight.Endpoints[0].LbEndpoints[0].LoadBalancingWeight = wrapperspb.UInt32(0)
	udp := assignment(t, "web", "10.0.0.2:80")
	udp.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress().Protocol = corev3.SocketAddress_UDP
	overprov := assignment(t, "web", "10.0.0.2:80")
	overprov.Policy = &endpointv3.ClusterLoadAssignment_Policy{OverprovisioningFactor: wrapperspb.UInt32(100)}
	port0 := assignment(t, "web", "10.0.0.2:80")
	port0.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{}
	named := assignment(t, "web")
	named.NamedEndpoints = map[string]*endpointv3.Endpoint{"x": {}}

	for _, tc := range []struct {
		name string
		cla  *endpointv3.ClusterLoadAssignment
		want string // "" for accepted
	}{
		{"two hosts", assignment(t, "web", "10.0.0.2:80", "[::1]:81"), ""},
		{"no endpoints", &endpointv3.ClusterLoadAssignment{ClusterName: "web"}, ""},
		{"no cluster yet", assignment(t, "later", "10.0.0.3:80"), ""},
		{"host name", badAddr, `cluster load assignment "web": endpoints[0].lb_endpoints[1].endpoint.address.socket_address.address: "db.example" is not an IP address`},
		{"weight 0", zeroWeight, `cluster load assignment "web": endpoints[0].lb_endpoints[0].load_balancing_weight: must be at least 1`},
		{"UDP", udp, `endpoints[0].lb_endpoints[0].endpoint.address.socket_address.protocol: UDP not supported`},
		{"overprovisioning", overprov, `policy.overprovisioning_factor: 100 not supported`},
		{"port 0", port0, `endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: 0 is not a port`},
		{"named endpoints", named, `cluster load assignment "web": named_endpoints`},
	} {
		err := CheckAssignment(tc.cla)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v, want accepted", tc.name, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if hs := c.Hosts(); len(hs) != 1 || hs[0].Address != "10.0.0.1:80" {
			t.Fatalf("%s: CheckAssignment changed the cluster's hosts: %d", tc.name, len(hs))
		}
		if tc.want == "" || tc.cla.GetClusterName() != "web" {
			continue
		}
		// SetAssignment refuses it with the same message.
		if serr := m.SetAssignment(tc.cla); serr == nil || serr.Error() != err.Error() {
			t.Errorf("%s: SetAssignment says %v, CheckAssignment %v", tc.name, serr, err)
		}
	}
	if err := CheckAssignment(assignment(t, "", "10.0.0.1:80")); err == nil || !strings.Contains(err.Error(), "cluster_name: empty") {
		t.Errorf("no cluster_name: %v", err)
	}
	if err := CheckAssignment(nil); err == nil {
		t.Error("nil assignment accepted")
	}
}

package proxy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/client_side_weighted_round_robin/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/least_request/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/maglev/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/ring_hash/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/round_robin/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/wrr_locality/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/skeinmesh/skein/sidecar/xdsclient"
)

// goldenDir holds the operator's translator output, one file per scenario:
// what Skein's control plane really sends a proxy. Only the files are
// read; nothing of the operator is imported.
const goldenDir = "../../internal/xds/translate/testdata"

// knownGaps are the filters the proxy has no factory for yet: a scenario
// that uses one is refused with an error naming it, not accepted.
var knownGaps = []string{
	"envoy.extensions.filters.network.rbac.v3.RBAC",
	"envoy.extensions.filters.http.rbac.v3.RBAC",
	"envoy.extensions.filters.http.fault.v3.HTTPFault",
}

// TestControlPlaneScenarios applies every scenario of the operator's
// translator golden files, in ADS order (clusters, endpoints, listeners
// with their addresses moved to free loopback ports, routes): each is
// accepted and makes the proxy ready, or, if it uses a filter the proxy
// does not implement yet, refused naming the filter.
func TestControlPlaneScenarios(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.golden.yaml"))
	if len(files) == 0 {
		t.Skip("no translator golden files at " + goldenDir)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".golden.yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			js, err := yaml.YAMLToJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string][]json.RawMessage
			if err := json.Unmarshal(js, &doc); err != nil {
				t.Fatal(err)
			}
			gap := ""
			for _, g := range knownGaps {
				if strings.Contains(string(data), g) {
					gap = g
				}
			}
			p := newProxy(t, Config{ADS: true})
			for _, step := range []struct {
				key, typeURL string
				fresh        func() proto.Message
			}{
				{"clusters", xdsclient.ClusterType, func() proto.Message { return new(clusterv3.Cluster) }},
				{"endpoints", xdsclient.EndpointType, func() proto.Message { return new(endpointv3.ClusterLoadAssignment) }},
				{"listeners", xdsclient.ListenerType, func() proto.Message { return new(listenerv3.Listener) }},
				{"routes", xdsclient.RouteType, func() proto.Message { return new(routev3.RouteConfiguration) }},
			} {
				var ms []proto.Message
				for _, raw := range doc[step.key] {
					m := step.fresh()
					if err := protojson.Unmarshal(raw, m); err != nil {
						t.Fatalf("%s: %v", step.key, err)
					}
					if l, ok := m.(*listenerv3.Listener); ok && l.GetAddress() != nil {
						l.Address = addr("127.0.0.1", 0) // not the host's 15001 and 15006
					}
					ms = append(ms, m)
				}
				err := p.Apply(step.typeURL, set(t, ms...))
				switch {
				case err == nil:
				case gap != "" && step.key == "listeners":
					if !strings.Contains(err.Error(), gap) && !strings.Contains(err.Error(), "filter") {
						t.Errorf("refused, but not naming the missing filter %s: %v", gap, err)
					}
					t.Logf("refused, as expected until %s has a factory: %v", gap, err)
					return
				default:
					t.Fatalf("%s refused: %v", step.key, err)
				}
			}
			if gap != "" {
				t.Errorf("uses %s, which has no factory, and was accepted", gap)
			}
			if !p.Ready() {
				t.Error("not ready with the scenario's whole config")
			}
		})
	}
}

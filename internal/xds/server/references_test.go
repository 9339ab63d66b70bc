package server

import (
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// apiListener is a proxyless gRPC client's listener: an HTTP connection
// manager taking route configuration rds from RDS, outside any filter chain.
func apiListener(t *testing.T, name, rds string) *listenerv3.Listener {
	t.Helper()
	hcm, err := anypb.New(&hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
		RouteConfigName: rds,
		ConfigSource:    &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: hcm}}
}

// Regression: go-control-plane's Consistent refused every proxyless
// client's snapshot, since it neither follows RDS names in API listeners nor
// allows route configurations nothing references.
func TestSnapshotWithAPIListenerIsPublished(t *testing.T) {
	cfg := testConfig(spec{port: 8080, generation: 1})
	cfg.Resources[resource.ListenerType] = append(cfg.Resources[resource.ListenerType], apiListener(t, "web.shop.svc.cluster.local:80", "web.shop.svc.cluster.local:80"))
	cfg.Resources[resource.RouteType] = append(cfg.Resources[resource.RouteType],
		&routev3.RouteConfiguration{Name: "web.shop.svc.cluster.local:80"},
		&routev3.RouteConfiguration{Name: "unreferenced"})
	if _, _, err := buildSnapshot(newHasher(), cfg); err != nil {
		t.Fatalf("buildSnapshot refused a consistent snapshot: %v", err)
	}
}

func TestSnapshotWithDanglingReferencesIsRefused(t *testing.T) {
	cases := []struct {
		name string
		// change breaks a consistent config; want is a fragment of the error.
		change func(cfg *Config)
		want   string
	}{
		{name: "API listener's route configuration missing", change: func(cfg *Config) {
			cfg.Resources[resource.ListenerType] = append(cfg.Resources[resource.ListenerType], apiListener(t, "web:80", "web:80"))
		}, want: `listener "web:80" takes route configuration "web:80" from RDS`},
		{name: "filter chain's route configuration missing", change: func(cfg *Config) {
			cfg.Resources[resource.RouteType] = nil
		}, want: `listener "listener-80" takes route configuration "http-80"`},
		{name: "EDS cluster without endpoints", change: func(cfg *Config) {
			cfg.Resources[resource.EndpointType] = []types.Resource{}
		}, want: `EDS cluster "backend" has no ClusterLoadAssignment`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(spec{port: 8080, generation: 1})
			tc.change(&cfg)
			_, _, err := buildSnapshot(newHasher(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("buildSnapshot error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

package bootstrap

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	// The typed configs of Envoy's examples, as the proxy's packages link them.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// TestEnvoyExamples: Envoy's own static and dynamic examples load from YAML
// and JSON alike, pass Check, and say what the proxy needs.
func TestEnvoyExamples(t *testing.T) {
	for _, name := range []string{"static", "dynamic"} {
		t.Run(name, func(t *testing.T) {
			fromYAML, err := Load(filepath.Join("testdata", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := Load(filepath.Join("testdata", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(fromYAML, fromJSON) {
				t.Errorf("YAML and JSON differ:\n%v\n%v", fromYAML, fromJSON)
			}
			if err := Check(fromYAML); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got := AdminAddress(fromYAML); got != "127.0.0.1:9901" {
				t.Errorf("AdminAddress = %q", got)
			}
			ads, err := ADS(fromYAML)
			if err != nil {
				t.Fatal(err)
			}
			switch name {
			case "static":
				if ads != nil {
					t.Errorf("ADS = %+v, want none", ads)
				}
				l := fromYAML.GetStaticResources().GetListeners()[0]
				hcm := &hcmv3.HttpConnectionManager{}
				if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
					t.Fatal(err)
				}
				if got := hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetCluster(); got != "some_service" {
					t.Errorf("route's cluster = %q", got)
				}
			case "dynamic":
				want := &ADSTarget{
					ClusterName:    "xds_cluster",
					Address:        "127.0.0.1:5678",
					Metadata:       map[string][]string{"authorization": {"Bearer static-token"}},
					ConnectTimeout: 250 * time.Millisecond,
				}
				if !reflect.DeepEqual(ads, want) {
					t.Errorf("ADS = %+v, want %+v", ads, want)
				}
			}
		})
	}
}

// TestParseErrors: what cannot be parsed is refused with its field path.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string   // a bootstrap, YAML unless it starts with '{'
		want []string // substrings of the error
	}{
		{
			name: "misspelled field",
			in:   "static_resources:\n  clusters:\n  - name: a\n    conect_timeout: 1s\n",
			want: []string{"static_resources.clusters[0].conect_timeout", `unknown field "conect_timeout"`},
		},
		{
			name: "misspelled field in JSON",
			in:   `{"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port": 1}}}}`,
			want: []string{"admin.address.socket_address.port", `unknown field "port"`},
		},
		{
			name: "bad enum value",
			in:   "static_resources:\n  clusters:\n  - name: a\n  - name: b\n    type: STATC\n",
			want: []string{"static_resources.clusters[1].type", "STATC"},
		},
		{
			name: "typed config the proxy does not implement",
			in: `static_resources:
  listeners:
  - name: l
    filter_chains:
    - filters:
      - name: envoy.filters.network.mongo_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy
`,
			want: []string{"static_resources.listeners[0].filter_chains[0].filters[0].typed_config", "mongo_proxy.v3.MongoProxy is not supported"},
		},
		{
			name: "typed config under a map key",
			in: `static_resources:
  clusters:
  - name: a
    typed_extension_protocol_options:
      envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions
`,
			want: []string{`static_resources.clusters[0].typed_extension_protocol_options["envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions"]`},
		},
		{
			name: "proto validation",
			in:   "admin:\n  address:\n    socket_address: {address: 127.0.0.1, port_value: 70000}\n",
			want: []string{"admin.address.socket_address.port_value: value must be less than or equal to 65535"},
		},
		{
			name: "proto validation in a list",
			in:   "static_resources:\n  clusters:\n  - name: a\n  - name: b\n    connect_timeout: -1s\n",
			want: []string{"static_resources.clusters[1].connect_timeout: value must be greater than 0s"},
		},
		{
			name: "not YAML",
			in:   "admin: [\n",
			want: []string{"YAML"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), Detect)
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadRefusesBinaryFormats(t *testing.T) {
	p := filepath.Join(t.TempDir(), "envoy.pb")
	if err := os.WriteFile(p, []byte{0x0a, 0x00}, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "YAML or JSON") {
		t.Errorf("Load(.pb) = %v, want a refusal", err)
	}
}

// TestCheckRefusals: each change to Envoy's dynamic example takes it out of
// the subset, and Check says where.
func TestCheckRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(b *bootstrapv3.Bootstrap)
		want   []string // substrings of the error
	}{
		{
			name: "stats sinks and tracing, both reported",
			change: func(b *bootstrapv3.Bootstrap) {
				b.StatsSinks = []*metricsv3.StatsSink{{Name: "envoy.stat_sinks.statsd"}}
				b.Tracing = &tracev3.Tracing{}
			},
			want: []string{"stats_sinks: not supported", "tracing: not supported"},
		},
		{
			name:   "admin on all addresses",
			change: func(b *bootstrapv3.Bootstrap) { b.Admin.Address = addr("0.0.0.0", 9901) },
			want:   []string{"admin.address.socket_address.address", `"0.0.0.0" is not a loopback address`},
		},
		{
			name:   "admin without an address",
			change: func(b *bootstrapv3.Bootstrap) { b.Admin.Address = nil },
			want:   []string{"admin.address.socket_address: required"},
		},
		{
			name: "duplicate cluster names",
			change: func(b *bootstrapv3.Bootstrap) {
				b.StaticResources.Clusters = append(b.StaticResources.Clusters, &clusterv3.Cluster{Name: "xds_cluster"})
			},
			want: []string{`static_resources.clusters[1].name: "xds_cluster" is also the name of static_resources.clusters[0]`},
		},
		{
			name:   "no node id",
			change: func(b *bootstrapv3.Bootstrap) { b.Node.Id = "" },
			want:   []string{"node.id: required"},
		},
		{
			name:   "REST",
			change: func(b *bootstrapv3.Bootstrap) { b.DynamicResources.AdsConfig.ApiType = corev3.ApiConfigSource_REST },
			want:   []string{"dynamic_resources.ads_config.api_type: REST is not supported"},
		},
		{
			name: "unknown ADS cluster",
			change: func(b *bootstrapv3.Bootstrap) {
				b.DynamicResources.AdsConfig.GrpcServices[0].GetEnvoyGrpc().ClusterName = "nope"
			},
			want: []string{`dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: "nope" is not a cluster`},
		},
		{
			name: "google_grpc",
			change: func(b *bootstrapv3.Bootstrap) {
				b.DynamicResources.AdsConfig.GrpcServices[0].TargetSpecifier = &corev3.GrpcService_GoogleGrpc_{GoogleGrpc: &corev3.GrpcService_GoogleGrpc{TargetUri: "x:1"}}
			},
			want: []string{"dynamic_resources.ads_config.grpc_services[0].google_grpc: not supported"},
		},
		{
			name: "ADS cluster from EDS",
			change: func(b *bootstrapv3.Bootstrap) {
				b.StaticResources.Clusters[0].ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
			},
			want: []string{"static_resources.clusters[0].type: the ADS cluster \"xds_cluster\" must be STATIC"},
		},
		{
			name: "ADS cluster with two endpoints",
			change: func(b *bootstrapv3.Bootstrap) {
				lle := b.StaticResources.Clusters[0].LoadAssignment.Endpoints[0]
				lle.LbEndpoints = append(lle.LbEndpoints, lle.LbEndpoints[0])
			},
			want: []string{"static_resources.clusters[0].load_assignment", "exactly one endpoint", "has 2"},
		},
		{
			name: "ADS cluster over TLS",
			change: func(b *bootstrapv3.Bootstrap) {
				b.StaticResources.Clusters[0].TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls"}
			},
			want: []string{"static_resources.clusters[0].transport_socket"},
		},
		{
			name: "listeners from a file",
			change: func(b *bootstrapv3.Bootstrap) {
				b.DynamicResources.LdsConfig = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{
					PathConfigSource: &corev3.PathConfigSource{Path: "/etc/lds.yaml"},
				}}
			},
			want: []string{"dynamic_resources.lds_config.path_config_source: not supported"},
		},
		{
			name:   "no cds_config",
			change: func(b *bootstrapv3.Bootstrap) { b.DynamicResources.CdsConfig = nil },
			want:   []string{"dynamic_resources.cds_config: required"},
		},
		{
			name: "static secrets",
			change: func(b *bootstrapv3.Bootstrap) {
				b.StaticResources.Secrets = []*tlsv3.Secret{{Name: "cert"}}
			},
			want: []string{"static_resources.secrets: not supported"},
		},
		{
			name:   "header prefix",
			change: func(b *bootstrapv3.Bootstrap) { b.HeaderPrefix = "x-custom" },
			want:   []string{"header_prefix: not supported"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Load(filepath.Join("testdata", "dynamic.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if err := Check(b); err != nil {
				t.Fatalf("the unchanged example: %v", err)
			}
			tc.change(b)
			err = Check(b)
			if err == nil {
				t.Fatal("Check: no error")
			}
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func addr(host string, port uint32) *corev3.Address { return socketAddress(host, port) }

// TestSidecarBootstrap: an injected proxy's bootstrap, built from its
// environment, is within the subset, survives a round trip through YAML,
// and names the pod as Skein's control plane expects.
func TestSidecarBootstrap(t *testing.T) {
	env := map[string]string{
		"POD_NAME": "app-0", "POD_NAMESPACE": "shop", "POD_IP": "10.1.2.3",
		"SKEIN_XDS_ADDRESS": "skein-xds.skein-system.svc:15012",
	}
	s := SidecarFromEnv(func(k string) string { return env[k] })
	b, err := s.Bootstrap()
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(b); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if got, want := b.GetNode().GetId(), "sidecar~10.1.2.3~app-0.shop~shop.svc.cluster.local"; got != want {
		t.Errorf("node id = %q, want %q", got, want)
	}
	ads, err := ADS(b)
	if err != nil {
		t.Fatal(err)
	}
	if ads.Address != "skein-xds.skein-system.svc:15012" || !ads.Delta || ads.ClusterName != XDSClusterName {
		t.Errorf("ADS = %+v", ads)
	}
	if got := b.GetStaticResources().GetClusters()[0].GetType(); got != clusterv3.Cluster_STRICT_DNS {
		t.Errorf("cluster type for a host name = %v", got)
	}
	if got := AdminAddress(b); got != "127.0.0.1:15000" {
		t.Errorf("admin = %q", got)
	}
	j, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(y, YAML)
	if err != nil || !proto.Equal(back, b) {
		t.Errorf("round trip through YAML: %v\n%s", err, y)
	}

	env["SKEIN_XDS_ADDRESS"] = "10.96.0.12:15012"
	b, err = SidecarFromEnv(func(k string) string { return env[k] }).Bootstrap()
	if err != nil || b.GetStaticResources().GetClusters()[0].GetType() != clusterv3.Cluster_STATIC {
		t.Errorf("an IP address: %v, %v", err, b.GetStaticResources().GetClusters()[0].GetType())
	}

	_, err = Sidecar{PodName: "app-0"}.Bootstrap()
	for _, w := range []string{"$POD_NAMESPACE: required", "$POD_IP: required", "$SKEIN_XDS_ADDRESS: required"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
	env["SKEIN_XDS_ADDRESS"] = "skein-xds"
	if _, err := SidecarFromEnv(func(k string) string { return env[k] }).Bootstrap(); err == nil {
		t.Error("an address without a port: no error")
	}
}

// TestTokenFile: the token is read on every call, so a rotated token is
// picked up; a missing or empty file is an error.
func TestTokenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	tok := TokenFile(p)
	if _, err := tok(); err == nil {
		t.Error("missing file: no error")
	}
	for _, content := range []string{"first\n", "second"} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := tok(); err != nil || got != strings.TrimSpace(content) {
			t.Errorf("token = %q, %v; want %q", got, err, strings.TrimSpace(content))
		}
	}
	if err := os.WriteFile(p, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tok(); err == nil {
		t.Error("empty file: no error")
	}
}

package listener

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"
)

// goldenListeners reads the listeners of every scenario the control
// plane's translator pins (read from disk: the proxy may not import the
// operator's packages).
func goldenListeners(t *testing.T) map[string][]*listenerv3.Listener {
	t.Helper()
	files, err := filepath.Glob("../../internal/xds/translate/testdata/*.golden.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files of the translator found (%v)", err)
	}
	out := map[string][]*listenerv3.Listener{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var doc struct {
			Listeners []json.RawMessage `json:"listeners"`
		}
		if err := json.Unmarshal(js, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, l := range doc.Listeners {
			var msg listenerv3.Listener
			if err := protojson.Unmarshal(l, &msg); err != nil {
				t.Fatalf("%s: listeners[%d]: %v", f, i, err)
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], &msg)
		}
	}
	return out
}

// TestCompilesEveryListenerTheControlPlaneSends: each scenario's listeners
// compile (API listeners are recognised for skipping), the capture
// listeners have the shape the translator documents, and chain selection
// finds each ClusterIP's chain.
func TestCompilesEveryListenerTheControlPlaneSends(t *testing.T) {
	filters := testFilters(&testDialer{})
	compiled, skipped := 0, 0
	for file, ls := range goldenListeners(t) {
		for _, l := range ls {
			c, err := Compile(l, filters)
			if l.GetApiListener() != nil {
				if !errors.Is(err, ErrAPIListener) {
					t.Errorf("%s: API listener %q: Compile = %v, want ErrAPIListener", file, l.GetName(), err)
				}
				skipped++
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			compiled++
			if !c.UseOriginalDst || (c.Address.Port() != 15001 && c.Address.Port() != 15006) {
				t.Errorf("%s: listener %q at %s, use_original_dst %v: not a capture listener", file, c.Name, c.Address, c.UseOriginalDst)
			}
			// Every chain is found by the destination it matches, and an
			// address no chain names gets the default chain.
			for i, fc := range l.GetFilterChains() {
				m := fc.GetFilterChainMatch()
				ip := "10.1.0.5" // the pod's own address, for inbound chains
				if len(m.GetPrefixRanges()) > 0 {
					ip = m.GetPrefixRanges()[0].GetAddressPrefix()
				}
				dst := netipAddrPort(t, ip, m.GetDestinationPort().GetValue())
				if got := c.Match(netipAddrPort(t, "10.1.0.9", 40000), dst); got != c.Chains[i] {
					t.Errorf("%s: %s: connection to %s got chain %v, want %q", file, c.Name, dst, got, fc.GetName())
				}
			}
			if got := c.Match(netipAddrPort(t, "10.1.0.9", 40000), netipAddrPort(t, "192.0.2.1", 1)); got == nil || got.Index != -1 {
				t.Errorf("%s: %s: a connection no chain names got %v, want the default chain", file, c.Name, got)
			}
		}
	}
	if compiled < 40 || skipped == 0 {
		t.Errorf("compiled %d listeners and skipped %d API listeners: the golden files were not all read", compiled, skipped)
	}

	// Without the network RBAC factory, the inbound listener that uses it is
	// refused, not served without its filter.
	noRBAC := testFilters(&testDialer{})
	delete(noRBAC, NetworkRBACType)
	var inbound *listenerv3.Listener
	for _, l := range goldenListeners(t)["authz-deny.golden.yaml"] {
		if l.GetName() == "virtualInbound" {
			inbound = l
		}
	}
	_, err := Compile(inbound, noRBAC)
	want := `listener "virtualInbound": filter_chains[1].filters[0].typed_config: filter "envoy.filters.network.rbac": no network filter of type ` + NetworkRBACType
	if err == nil || err.Error() != want {
		t.Errorf("virtualInbound without an RBAC factory: %v\nwant %s", err, want)
	}
}

// TestRefusals: what the proxy cannot honour is refused with the listener's
// name and the field's path.
func TestRefusals(t *testing.T) {
	ok := func() *listenerv3.Listener {
		return &listenerv3.Listener{
			Name:    "l",
			Address: socketAddr("0.0.0.0", 15001),
			FilterChains: []*listenerv3.FilterChain{
				chain("a", &listenerv3.FilterChainMatch{DestinationPort: port(80), PrefixRanges: []*corev3.CidrRange{cidr("10.0.0.1/32")}}, toCluster(t, "a")),
			},
			DefaultFilterChain: chain("default", nil, toCluster(t, "PassthroughCluster")),
		}
	}
	tcp := func(cfg *tcpproxyv3.TcpProxy) *listenerv3.Listener {
		l := ok()
		l.FilterChains[0].Filters = []*listenerv3.Filter{tcpProxyFilter(t, cfg)}
		return l
	}
	for _, tc := range []struct {
		name string
		l    *listenerv3.Listener // ok() changed
		want string               // the whole error
	}{
		{"no name", func() *listenerv3.Listener { l := ok(); l.Name = ""; return l }(),
			`listener "": name: required`},
		{"pipe address", func() *listenerv3.Listener {
			l := ok()
			l.Address = &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/x"}}}
			return l
		}(), `listener "l": address: only socket_address is supported`},
		{"UDP", func() *listenerv3.Listener {
			l := ok()
			l.Address.GetSocketAddress().Protocol = corev3.SocketAddress_UDP
			return l
		}(), `listener "l": address.socket_address.protocol: only TCP is supported`},
		{"host name", func() *listenerv3.Listener { l := ok(); l.Address.GetSocketAddress().Address = "localhost"; return l }(),
			`listener "l": address.socket_address.address: not an IP address: "localhost"`},
		{"listener filters", func() *listenerv3.Listener {
			l := ok()
			l.ListenerFilters = []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector"}}
			return l
		}(), `listener "l": listener_filters: not supported by skein-proxy`},
		{"transparent", func() *listenerv3.Listener { l := ok(); l.Transparent = wrapperspb.Bool(true); return l }(),
			`listener "l": transparent: IP_TRANSPARENT (TPROXY) is not supported: skein-init captures with REDIRECT`},
		{"bind_to_port false", func() *listenerv3.Listener { l := ok(); l.BindToPort = wrapperspb.Bool(false); return l }(),
			`listener "l": bind_to_port: false is not supported: every listener binds its address`},
		{"no chains", func() *listenerv3.Listener { l := ok(); l.FilterChains, l.DefaultFilterChain = nil, nil; return l }(),
			`listener "l": filter_chains: no filter chain and no default_filter_chain`},
		{"bad prefix", func() *listenerv3.Listener {
			l := ok()
			l.FilterChains[0].FilterChainMatch.PrefixRanges = append(l.FilterChains[0].FilterChainMatch.PrefixRanges, &corev3.CidrRange{AddressPrefix: "10.0.0.300"})
			return l
		}(), `listener "l": filter_chains[0].filter_chain_match.prefix_ranges[1].address_prefix: not an IP address: "10.0.0.300"`},
		{"prefix too long", func() *listenerv3.Listener {
			l := ok()
			l.FilterChains[0].FilterChainMatch.PrefixRanges[0].PrefixLen = wrapperspb.UInt32(33)
			return l
		}(), `listener "l": filter_chains[0].filter_chain_match.prefix_ranges[0].prefix_len: 33 is longer than the address (32 bits)`},
		{"server names", func() *listenerv3.Listener {
			l := ok()
			l.FilterChains[0].FilterChainMatch.ServerNames = []string{"example.com"}
			return l
		}(), `listener "l": filter_chains[0].filter_chain_match.server_names: not supported yet: it needs TLS inspection, which comes with the mTLS issue`},
		{"application protocols", func() *listenerv3.Listener {
			l := ok()
			l.FilterChains[0].FilterChainMatch.ApplicationProtocols = []string{"h2c"}
			return l
		}(), `listener "l": filter_chains[0].filter_chain_match.application_protocols: not supported yet: it needs TLS inspection, which comes with the mTLS issue`},
		{"transport socket", func() *listenerv3.Listener {
			l := ok()
			l.FilterChains[0].TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls"}
			return l
		}(), `listener "l": filter_chains[0].transport_socket: not supported yet (TLS comes with the mTLS issue)`},
		{"duplicate match", func() *listenerv3.Listener {
			l := ok()
			l.FilterChains = append(l.FilterChains, chain("b", &listenerv3.FilterChainMatch{DestinationPort: port(81)}, toCluster(t, "b")),
				chain("c", &listenerv3.FilterChainMatch{DestinationPort: port(80), PrefixRanges: []*corev3.CidrRange{cidr("10.0.0.2/32"), {AddressPrefix: "10.0.0.1", PrefixLen: wrapperspb.UInt32(32)}}}, toCluster(t, "c")))
			return l
		}(), `listener "l": filter_chains[2].filter_chain_match: matches the same connections as filter_chains[0]`},
		{"no prefix is 0.0.0.0/0 and ::/0", func() *listenerv3.Listener {
			l := ok()
			l.FilterChains = append(l.FilterChains, chain("b", &listenerv3.FilterChainMatch{DestinationPort: port(81)}, toCluster(t, "b")),
				chain("c", &listenerv3.FilterChainMatch{DestinationPort: port(81), PrefixRanges: []*corev3.CidrRange{cidr("::/0")}}, toCluster(t, "c")))
			return l
		}(), `listener "l": filter_chains[2].filter_chain_match: matches the same connections as filter_chains[1]`},
		{"default chain with a match", func() *listenerv3.Listener {
			l := ok()
			l.DefaultFilterChain.FilterChainMatch = &listenerv3.FilterChainMatch{DestinationPort: port(1)}
			return l
		}(), `listener "l": default_filter_chain.filter_chain_match: must be empty`},
		{"unknown filter", func() *listenerv3.Listener {
			l := ok()
			l.FilterChains[0].Filters = []*listenerv3.Filter{{Name: "envoy.filters.network.redis_proxy", ConfigType: &listenerv3.Filter_TypedConfig{
				TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"}}}}
			return l
		}(), `listener "l": filter_chains[0].filters[0].typed_config: filter "envoy.filters.network.redis_proxy": no network filter of type type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy`},
		{"filter without typed_config", func() *listenerv3.Listener {
			l := ok()
			l.DefaultFilterChain.Filters = []*listenerv3.Filter{{Name: "envoy.filters.network.tcp_proxy"}}
			return l
		}(), `listener "l": default_filter_chain.filters[0].typed_config: required (filter "envoy.filters.network.tcp_proxy")`},
		{"empty filters", func() *listenerv3.Listener { l := ok(); l.FilterChains[0].Filters = nil; return l }(),
			`listener "l": filter_chains[0].filters: empty: a chain needs a terminal filter (tcp_proxy or http_connection_manager)`},
		{"terminal filter not last", func() *listenerv3.Listener {
			l := ok()
			l.FilterChains[0].Filters = append(l.FilterChains[0].Filters, toCluster(t, "b"))
			return l
		}(), `listener "l": filter_chains[0].filters[0]: filter "envoy.filters.network.tcp_proxy" is terminal: it must be the chain's last filter`},
		{"network filter last", func() *listenerv3.Listener {
			l := ok()
			l.FilterChains[0].Filters = []*listenerv3.Filter{{Name: "envoy.filters.network.rbac", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: NetworkRBACType}}}}
			return l
		}(), `listener "l": filter_chains[0].filters[0]: filter "envoy.filters.network.rbac" is not terminal: the last filter of a chain must be (tcp_proxy or http_connection_manager)`},
		{"tcp_proxy without a cluster", tcp(&tcpproxyv3.TcpProxy{StatPrefix: "x"}),
			`listener "l": filter_chains[0].filters[0].typed_config.cluster: required (or weighted_clusters)`},
		{"tcp_proxy weight 0", tcp(&tcpproxyv3.TcpProxy{ClusterSpecifier: &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: &tcpproxyv3.TcpProxy_WeightedCluster{
			Clusters: []*tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{{Name: "a", Weight: 1}, {Name: "b"}}}}}),
			`listener "l": filter_chains[0].filters[0].typed_config.weighted_clusters.clusters[1].weight: must be at least 1`},
		{"tcp_proxy hash policy", tcp(&tcpproxyv3.TcpProxy{ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "a"}, HashPolicy: []*typev3.HashPolicy{{}}}),
			`listener "l": filter_chains[0].filters[0].typed_config.hash_policy: not supported by skein-proxy`},
		{"tcp_proxy tunneling", tcp(&tcpproxyv3.TcpProxy{ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "a"}, TunnelingConfig: &tcpproxyv3.TcpProxy_TunnelingConfig{Hostname: "h"}}),
			`listener "l": filter_chains[0].filters[0].typed_config.tunneling_config: not supported by skein-proxy`},
		{"tcp_proxy negative idle timeout", tcp(&tcpproxyv3.TcpProxy{ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "a"}, IdleTimeout: &durationpb.Duration{Seconds: -1}}),
			`listener "l": filter_chains[0].filters[0].typed_config.idle_timeout: not a valid duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.l, testFilters(&testDialer{}))
			if err == nil || err.Error() != tc.want {
				t.Errorf("Compile = %v\nwant      %s", err, tc.want)
			}
		})
	}
	if _, err := Compile(ok(), testFilters(&testDialer{})); err != nil {
		t.Errorf("the listener the cases start from does not compile: %v", err)
	}
}

// TestTCPProxyCompiles: idle_timeout's default and zero, attempts, weights.
func TestTCPProxyCompiles(t *testing.T) {
	p, err := CompileTCPProxy(&tcpproxyv3.TcpProxy{ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "a"}})
	if err != nil || p.IdleTimeout != DefaultTCPIdleTimeout || p.MaxConnectAttempts != 1 {
		t.Errorf("unset idle_timeout and attempts: %+v, %v; want one hour and one attempt", p, err)
	}
	p, err = CompileTCPProxy(&tcpproxyv3.TcpProxy{ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "a"},
		IdleTimeout: durationpb.New(0), MaxConnectAttempts: wrapperspb.UInt32(3)})
	if err != nil || p.IdleTimeout != 0 || p.MaxConnectAttempts != 3 {
		t.Errorf("idle_timeout 0s, 3 attempts: %+v, %v; want no idle timeout", p, err)
	}
	p, err = CompileTCPProxy(&tcpproxyv3.TcpProxy{ClusterSpecifier: &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: &tcpproxyv3.TcpProxy_WeightedCluster{
		Clusters: []*tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{{Name: "primary", Weight: 3}, {Name: "replica", Weight: 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for range 20000 {
		counts[p.cluster()]++
	}
	if share := float64(counts["primary"]) / 20000; share < 0.72 || share > 0.78 || counts["primary"]+counts["replica"] != 20000 {
		t.Errorf("weights 3:1 chose %v", counts)
	}
}

func TestMain(m *testing.M) {
	if runHelper() {
		return
	}
	os.Exit(m.Run())
}

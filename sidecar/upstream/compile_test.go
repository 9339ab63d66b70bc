package upstream

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	lbcp "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/cluster_provided/v3"
	lbmaglev "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/maglev/v3"
	lbpf "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/pick_first/v3"
	lbring "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/ring_hash/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"

	"github.com/skeinmesh/skein/sidecar/lb"
)

const web = "outbound|80||web.shop.svc.cluster.local"

func typed(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

func lbPolicies(ms ...proto.Message) *clusterv3.LoadBalancingPolicy {
	p := &clusterv3.LoadBalancingPolicy{}
	for _, m := range ms {
		p.Policies = append(p.Policies, &clusterv3.LoadBalancingPolicy_Policy{TypedExtensionConfig: &corev3.TypedExtensionConfig{
			Name: string(m.ProtoReflect().Descriptor().FullName()), TypedConfig: typed(m),
		}})
	}
	return p
}

func httpOpts(o *httpv3.HttpProtocolOptions) map[string]*anypb.Any {
	return map[string]*anypb.Any{httpOptionsKey: typed(o)}
}

func explicitH2() *httpv3.HttpProtocolOptions {
	return &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
		ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		},
	}}
}

func originalDst() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 "PassthroughCluster",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
	}
}

func dnsCluster(t testing.TB, typ clusterv3.Cluster_DiscoveryType, hosts ...string) *clusterv3.Cluster {
	pb := staticCluster(t, "dns", hosts...)
	pb.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: typ}
	return pb
}

// TestCompile compiles one Cluster of each type, policy and protocol
// option and checks what the proxy will do with it.
func TestCompile(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(pb *clusterv3.Cluster) *clusterv3.Cluster // from an EDS cluster named web
		typ   Type
		pol   lb.Policy
		opts  lb.Options
		proto Protocol
		check func(t *testing.T, c *Cluster)
	}{
		{name: "EDS defaults to round robin, HTTP/1.1, 5s connect timeout", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.ConnectTimeout = nil
			return pb
		}, typ: EDS, pol: lb.RoundRobin, proto: HTTP11, check: func(t *testing.T, c *Cluster) {
			if c.ConnectTimeout() != 5*time.Second || c.EDSName() != web {
				t.Errorf("connect timeout %v, EDS name %q", c.ConnectTimeout(), c.EDSName())
			}
		}},
		{name: "EDS service_name", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.EdsClusterConfig.ServiceName = "web-eds"
			return pb
		}, typ: EDS, check: func(t *testing.T, c *Cluster) {
			if c.EDSName() != "web-eds" {
				t.Errorf("EDS name %q", c.EDSName())
			}
		}},
		{name: "least request with choice_count", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
			pb.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{ChoiceCount: wrapperspb.UInt32(3)}}
			return pb
		}, pol: lb.LeastRequest, opts: lb.Options{ChoiceCount: 3}},
		{name: "random", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LbPolicy = clusterv3.Cluster_RANDOM
			return pb
		}, pol: lb.Random},
		{name: "ring hash with sizes", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LbPolicy = clusterv3.Cluster_RING_HASH
			pb.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
				MinimumRingSize: wrapperspb.UInt64(2048), MaximumRingSize: wrapperspb.UInt64(4096)}}
			return pb
		}, pol: lb.RingHash, opts: lb.Options{MinRingSize: 2048, MaxRingSize: 4096}},
		{name: "maglev with table size", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LbPolicy = clusterv3.Cluster_MAGLEV
			pb.LbConfig = &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(251)}}
			return pb
		}, pol: lb.Maglev, opts: lb.Options{TableSize: 251}},
		{name: "load_balancing_policy: first supported wins over lb_policy", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LbPolicy = clusterv3.Cluster_RING_HASH
			pb.LoadBalancingPolicy = lbPolicies(&lbpf.PickFirst{}, &lbmaglev.Maglev{TableSize: wrapperspb.UInt64(65537)}, &lbring.RingHash{})
			return pb
		}, pol: lb.Maglev, opts: lb.Options{TableSize: 65537}},
		{name: "load_balancing_policy: ring hash after an unsupported one", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LoadBalancingPolicy = lbPolicies(&lbpf.PickFirst{}, &lbring.RingHash{HashFunction: lbring.RingHash_XX_HASH, MinimumRingSize: wrapperspb.UInt64(512)})
			return pb
		}, pol: lb.RingHash, opts: lb.Options{MinRingSize: 512}},
		{name: "static", edit: func(*clusterv3.Cluster) *clusterv3.Cluster {
			return staticCluster(t, web, "10.0.0.1:80", "10.0.0.2:80")
		}, typ: Static, check: func(t *testing.T, c *Cluster) {
			if n := len(c.Hosts()); n != 2 {
				t.Errorf("%d hosts, want 2", n)
			}
		}},
		{name: "strict DNS", edit: func(*clusterv3.Cluster) *clusterv3.Cluster {
			return dnsCluster(t, clusterv3.Cluster_STRICT_DNS, "localhost:80")
		}, typ: StrictDNS},
		{name: "logical DNS", edit: func(*clusterv3.Cluster) *clusterv3.Cluster {
			return dnsCluster(t, clusterv3.Cluster_LOGICAL_DNS, "localhost:80")
		}, typ: LogicalDNS},
		{name: "original destination", edit: func(*clusterv3.Cluster) *clusterv3.Cluster { return originalDst() }, typ: OriginalDst},
		{name: "original destination by load_balancing_policy", edit: func(*clusterv3.Cluster) *clusterv3.Cluster {
			pb := originalDst()
			pb.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
			pb.LoadBalancingPolicy = lbPolicies(&lbcp.ClusterProvided{})
			return pb
		}, typ: OriginalDst},
		{name: "explicit HTTP/2", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.TypedExtensionProtocolOptions = httpOpts(explicitH2())
			return pb
		}, proto: HTTP2},
		{name: "deprecated http2_protocol_options", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.Http2ProtocolOptions = &corev3.Http2ProtocolOptions{MaxConcurrentStreams: wrapperspb.UInt32(10)}
			return pb
		}, proto: HTTP2, check: func(t *testing.T, c *Cluster) {
			if c.maxStreams != 10 {
				t.Errorf("max streams %d, want 10", c.maxStreams)
			}
		}},
		{name: "use downstream protocol", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.TypedExtensionProtocolOptions = httpOpts(&httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_UseDownstreamProtocolConfig{
				UseDownstreamProtocolConfig: &httpv3.HttpProtocolOptions_UseDownstreamHttpConfig{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
			}})
			return pb
		}, proto: Downstream},
		{name: "idle timeout and max requests", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			o := &httpv3.HttpProtocolOptions{
				CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{IdleTimeout: durationpb.New(time.Minute), MaxRequestsPerConnection: wrapperspb.UInt32(7)},
				UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}},
				}},
			}
			pb.TypedExtensionProtocolOptions = httpOpts(o)
			return pb
		}, proto: HTTP11, check: func(t *testing.T, c *Cluster) {
			if c.idleTimeout != time.Minute || c.maxRequests != 7 {
				t.Errorf("idle %v, max requests %d", c.idleTimeout, c.maxRequests)
			}
		}},
		{name: "resilience settings kept as data", edit: func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{MaxConnections: wrapperspb.UInt32(5)}}}
			pb.OutlierDetection = &clusterv3.OutlierDetection{Consecutive_5Xx: wrapperspb.UInt32(3)}
			pb.HealthChecks = []*corev3.HealthCheck{{Timeout: durationpb.New(time.Second), Interval: durationpb.New(time.Second),
				HealthChecker: &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}}}}
			return pb
		}, check: func(t *testing.T, c *Cluster) {
			p := c.Policies()
			if p.CircuitBreakers.GetThresholds()[0].GetMaxConnections().GetValue() != 5 ||
				p.OutlierDetection.GetConsecutive_5Xx().GetValue() != 3 || len(p.HealthChecks) != 1 {
				t.Errorf("policies not kept: %+v", p)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.edit(edsCluster(web)))
			if c.Type() != tt.typ || c.Protocol() != tt.proto {
				t.Errorf("type %s protocol %s, want %s %s", c.Type(), c.Protocol(), tt.typ, tt.proto)
			}
			if tt.typ != OriginalDst && (c.Policy() != tt.pol || c.lbOpts != tt.opts) {
				t.Errorf("policy %s %+v, want %s %+v", c.Policy(), c.lbOpts, tt.pol, tt.opts)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// TestCompileRefuses checks that what the proxy cannot honour is refused
// with the cluster's name and the field's path.
func TestCompileRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(pb *clusterv3.Cluster) *clusterv3.Cluster
		want string // the error, in full
	}{
		{"TLS transport socket", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls",
				ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typed(&tlsv3.UpstreamTlsContext{})}}
			return pb
		}, `cluster "` + web + `": transport_socket: TLS upstreams arrive with mTLS`},
		{"CLUSTER_PROVIDED on EDS", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
			return pb
		}, `cluster "` + web + `": lb_policy: CLUSTER_PROVIDED is only for ORIGINAL_DST clusters, not EDS`},
		{"ORIGINAL_DST with round robin", func(*clusterv3.Cluster) *clusterv3.Cluster {
			pb := originalDst()
			pb.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
			return pb
		}, `cluster "PassthroughCluster": lb_policy: ORIGINAL_DST needs CLUSTER_PROVIDED, not ROUND_ROBIN`},
		{"MAGLEV table size not prime", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LbPolicy = clusterv3.Cluster_MAGLEV
			pb.LbConfig = &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(1000)}}
			return pb
		}, `cluster "` + web + `": lb_policy Maglev: Maglev: maglev table size 1000: want a prime up to 5000011`},
		{"subsets", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LbSubsetConfig = &clusterv3.Cluster_LbSubsetConfig{SubsetSelectors: []*clusterv3.Cluster_LbSubsetConfig_LbSubsetSelector{{Keys: []string{"v"}}}}
			return pb
		}, `cluster "` + web + `": lb_subset_config: not supported`},
		{"static endpoint by name", func(*clusterv3.Cluster) *clusterv3.Cluster {
			return staticCluster(t, web, "10.0.0.1:80", "web:80")
		}, `cluster "` + web + `": load_assignment.endpoints[0].lb_endpoints[1].endpoint.address.socket_address.address: "web" is not an IP address`},
		{"no supported load_balancing_policy", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LoadBalancingPolicy = lbPolicies(&lbpf.PickFirst{})
			return pb
		}, `cluster "` + web + `": load_balancing_policy: none of ["envoy.extensions.load_balancing_policies.pick_first.v3.PickFirst"] is supported (round_robin, least_request, random, ring_hash, maglev, cluster_provided)`},
		{"murmur ring hash", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LoadBalancingPolicy = lbPolicies(&lbring.RingHash{HashFunction: lbring.RingHash_MURMUR_HASH_2})
			return pb
		}, `cluster "` + web + `": load_balancing_policy.policies[0].typed_extension_config.typed_config.hash_function: MURMUR_HASH_2 not supported (XX_HASH only)`},
		{"HTTP/3", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.TypedExtensionProtocolOptions = httpOpts(&httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
				ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http3ProtocolOptions{Http3ProtocolOptions: &corev3.Http3ProtocolOptions{}}},
			}})
			return pb
		}, `cluster "` + web + `": typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config.http3_protocol_options: HTTP/3 upstreams are not supported`},
		{"auto_config", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.TypedExtensionProtocolOptions = httpOpts(&httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_AutoConfig{AutoConfig: &httpv3.HttpProtocolOptions_AutoHttpConfig{}}})
			return pb
		}, `cluster "` + web + `": typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].auto_config: needs ALPN over TLS; TLS upstreams arrive with mTLS`},
		{"unknown protocol options", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.TypedExtensionProtocolOptions = map[string]*anypb.Any{"envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions": typed(&corev3.TcpProtocolOptions{})}
			return pb
		}, `cluster "` + web + `": typed_extension_protocol_options["envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions"]: not supported`},
		{"zero connect timeout", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.ConnectTimeout = durationpb.New(0)
			return pb
		}, `cluster "` + web + `": connect_timeout: must be positive`},
		{"two logical DNS endpoints", func(*clusterv3.Cluster) *clusterv3.Cluster {
			return dnsCluster(t, clusterv3.Cluster_LOGICAL_DNS, "localhost:80", "localhost:81")
		}, `cluster "dns": load_assignment: LOGICAL_DNS needs exactly one endpoint, got 2`},
		{"load_assignment on EDS", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.LoadAssignment = assignment(t, web, "10.0.0.1:80")
			return pb
		}, `cluster "` + web + `": load_assignment: not allowed on an EDS cluster (endpoints come from EDS)`},
		{"bind with freebind", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.UpstreamBindConfig = bindTo("127.0.0.6")
			pb.UpstreamBindConfig.Freebind = wrapperspb.Bool(true)
			return pb
		}, `cluster "` + web + `": upstream_bind_config: freebind: not supported`},
		{"bind to a name", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.UpstreamBindConfig = bindTo("localhost")
			return pb
		}, `cluster "` + web + `": upstream_bind_config: source_address.address: "localhost" is not an IP address`},
		{"bind over UDP", func(pb *clusterv3.Cluster) *clusterv3.Cluster {
			pb.UpstreamBindConfig = bindTo("127.0.0.6")
			pb.UpstreamBindConfig.SourceAddress.Protocol = corev3.SocketAddress_UDP
			return pb
		}, `cluster "` + web + `": upstream_bind_config: source_address.protocol: TCP only`},
		{"drop overloads", func(*clusterv3.Cluster) *clusterv3.Cluster {
			pb := staticCluster(t, web, "10.0.0.1:80")
			pb.LoadAssignment.Policy = &endpointv3.ClusterLoadAssignment_Policy{DropOverloads: []*endpointv3.ClusterLoadAssignment_Policy_DropOverload{{Category: "x"}}}
			return pb
		}, `cluster "` + web + `": load_assignment.policy.drop_overloads: not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Compile(tt.edit(edsCluster(web)))
			if err == nil {
				c.Close()
				t.Fatalf("compiled; want error %s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n %s\nwant\n %s", err, tt.want)
			}
		})
	}
}

// TestCompileControlPlaneOutput compiles every Cluster and
// ClusterLoadAssignment in the control plane's golden files: the proxy
// accepts what the control plane sends.
func TestCompileControlPlaneOutput(t *testing.T) {
	files, err := filepath.Glob("../../internal/xds/translate/testdata/*.golden.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files (%v)", err)
	}
	var clusters, assignments int
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Clusters  []any `json:"clusters"`
			Endpoints []any `json:"endpoints"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		m := NewManager()
		var pbs []*clusterv3.Cluster
		for _, c := range doc.Clusters {
			pb := &clusterv3.Cluster{}
			unmarshal(t, f, c, pb)
			pbs = append(pbs, pb)
		}
		if err := m.Update(pbs); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		clusters += len(pbs)
		for _, e := range doc.Endpoints {
			cla := &endpointv3.ClusterLoadAssignment{}
			unmarshal(t, f, e, cla)
			if err := m.SetAssignment(cla); err != nil {
				t.Errorf("%s: %v", filepath.Base(f), err)
			}
			if c := m.Get(cla.GetClusterName()); c == nil || len(c.Hosts()) == 0 {
				t.Errorf("%s: endpoints %q reached no cluster", filepath.Base(f), cla.GetClusterName())
			}
			assignments++
		}
		m.Close()
	}
	t.Logf("%d files: %d clusters, %d assignments compiled", len(files), clusters, assignments)
	if clusters < 20 || assignments < 10 {
		t.Errorf("only %d clusters and %d assignments found: golden format changed?", clusters, assignments)
	}
}

// unmarshal turns one YAML-decoded protojson value into m.
func unmarshal(t *testing.T, file string, v any, m proto.Message) {
	t.Helper()
	js, err := yaml.Marshal(v)
	if err == nil {
		js, err = yaml.YAMLToJSON(js)
	}
	if err == nil {
		err = protojson.Unmarshal(js, m)
	}
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func TestClusterFieldsExist(t *testing.T) {
	fields := (&clusterv3.Cluster{}).ProtoReflect().Descriptor().Fields()
	for _, f := range clusterFields {
		if fields.ByName(protoName(f)) == nil {
			t.Errorf("clusterFields names %q, which Cluster does not have", f)
		}
	}
	if !strings.Contains(strings.Join(clusterFields, " "), "load_balancing_policy") {
		t.Error("load_balancing_policy missing")
	}
}

func bindTo(addr string) *corev3.BindConfig {
	return &corev3.BindConfig{SourceAddress: &corev3.SocketAddress{Address: addr}}
}

// TestBindSourceAddress connects through an ORIGINAL_DST cluster bound to
// 127.0.0.6, as the control plane's inbound clusters are: the backend sees
// the connection come from that address.
func TestBindSourceAddress(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pb := originalDst()
	pb.UpstreamBindConfig = bindTo("127.0.0.6")
	c := mustCompile(t, pb)
	h, err := c.Pick(&PickContext{OriginalDst: netip.MustParseAddrPort(ln.Addr().String())})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.DialTCP(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if got := peer.RemoteAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.6" {
		t.Errorf("backend saw the connection from %s, want 127.0.0.6", got)
	}
}

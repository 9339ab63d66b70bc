package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The injected sidecar's identity in these tests.
const (
	podName   = "app-0"
	podNS     = "default"
	testToken = "token-of-app-0"
	nodeID    = "sidecar~127.0.0.1~app-0.default~default.svc.cluster.local"
	cluster   = "outbound|80||web.default.svc.cluster.local"
	routeName = "80"
)

// xdsServer is a real go-control-plane ADS server (the ADS-mode snapshot
// cache Skein's operator uses for sidecars) on 127.0.0.1, which refuses
// streams without the pod's bearer token.
type xdsServer struct {
	t      *testing.T
	cache  cachev3.SnapshotCache
	addr   string
	grpc   *grpc.Server
	cancel context.CancelFunc

	mu      sync.Mutex
	nacks   []string // "<type> <message>"
	acks    int
	refused int // streams without the token
}

// startXDS listens on addr ("" for a free port).
func startXDS(t *testing.T, addr string) *xdsServer {
	t.Helper()
	s := &xdsServer{t: t, cache: cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lis net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if lis, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s.addr = lis.Addr().String()
	cb := serverv3.CallbackFuncs{
		StreamDeltaRequestFunc: func(_ int64, r *discoveryv3.DeltaDiscoveryRequest) error {
			s.record(r.GetTypeUrl(), r.GetResponseNonce(), r.GetErrorDetail())
			return nil
		},
		StreamRequestFunc: func(_ int64, r *discoveryv3.DiscoveryRequest) error {
			s.record(r.GetTypeUrl(), r.GetResponseNonce(), r.GetErrorDetail())
			return nil
		},
	}
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	srv := serverv3.NewServer(ctx, s.cache, cb)
	s.grpc = grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		if strings.Join(md.Get("authorization"), ",") != "Bearer "+testToken {
			s.mu.Lock()
			s.refused++
			s.mu.Unlock()
			return status.Error(codes.Unauthenticated, "no token")
		}
		return h(srv, ss)
	}))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(s.grpc, srv)
	go s.grpc.Serve(lis)
	t.Cleanup(s.stop)
	return s
}

func (s *xdsServer) stop() {
	s.grpc.Stop()
	s.cancel()
}

func (s *xdsServer) record(typeURL, nonce string, detail interface{ GetMessage() string }) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case detail != nil && detail.GetMessage() != "":
		s.nacks = append(s.nacks, typeURL+" "+detail.GetMessage())
	case nonce != "":
		s.acks++
	}
}

func (s *xdsServer) seenNACKs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.nacks)
}

func (s *xdsServer) set(snap *cachev3.Snapshot) {
	s.t.Helper()
	if err := snap.Consistent(); err != nil {
		s.t.Fatalf("inconsistent snapshot: %v", err)
	}
	if err := s.cache.SetSnapshot(context.Background(), nodeID, snap); err != nil {
		s.t.Fatal(err)
	}
}

// mesh is what a snapshot holds: an EDS cluster of the backends, reached
// through virtualOutbound (tcp_proxy) and an HTTP listener (HCM, RDS).
type mesh struct {
	outboundPort, httpPort string
	backends               []*backend
	extraListeners         []types.Resource
}

func (m mesh) snapshot(t *testing.T, version string) *cachev3.Snapshot {
	t.Helper()
	eds := &clusterv3.Cluster{
		Name:                 cluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		ConnectTimeout:       durationpb.New(time.Second),
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		}},
	}
	passthrough := &clusterv3.Cluster{
		Name:                 "PassthroughCluster",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       durationpb.New(time.Second),
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster, Endpoints: []*endpointv3.LocalityLbEndpoints{{}}}
	for _, b := range m.backends {
		cla.Endpoints[0].LbEndpoints = append(cla.Endpoints[0].LbEndpoints, &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: sockAddr("127.0.0.1", uint32(b.port))}},
		})
	}
	route := &routev3.RouteConfiguration{Name: routeName, VirtualHosts: []*routev3.VirtualHost{{
		Name: "web", Domains: []string{"*"},
		Routes: []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}},
		}},
	}}}
	tcp := &tcpproxyv3.TcpProxy{StatPrefix: cluster, ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster}}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: routeName,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: routeName,
			ConfigSource: &corev3.ConfigSource{
				ResourceApiVersion:    corev3.ApiVersion_V3,
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}},
	}
	port := func(p string) uint32 { n, _ := strconv.Atoi(p); return uint32(n) }
	listeners := []types.Resource{
		// The control plane's virtualOutbound uses use_original_dst; on
		// loopback without capture rules every connection would look
		// addressed to the listener itself, so this one matches plainly,
		// on the fallback's address (0.0.0.0), whose socket it takes over.
		&listenerv3.Listener{
			Name:    "virtualOutbound",
			Address: sockAddr("0.0.0.0", port(m.outboundPort)),
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
				Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, tcp)},
			}}}},
		},
		&listenerv3.Listener{
			Name:    "http",
			Address: sockAddr("127.0.0.1", port(m.httpPort)),
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
				Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)},
			}}}},
		},
	}
	snap, err := cachev3.NewSnapshot(version, map[resource.Type][]types.Resource{
		resource.ClusterType:  {eds, passthrough},
		resource.EndpointType: {cla},
		resource.ListenerType: append(listeners, m.extraListeners...),
		resource.RouteType:    {route},
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func sockAddr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// startSidecar runs skein-proxy as the injector runs it (no -c: the
// bootstrap from the environment, delta ADS with the token file), its
// capture fallback on outboundPort and a free inbound port.
func startSidecar(t *testing.T, xdsAddr, outboundPort string, args ...string) *proc {
	t.Helper()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"POD_NAME=" + podName, "POD_NAMESPACE=" + podNS, "POD_IP=127.0.0.1", "SKEIN_XDS_ADDRESS=" + xdsAddr}
	return startProxy(t, env, append([]string{"--xds-token-file", token, "--outbound-port", outboundPort,
		"--inbound-port", freePort(t), "--drain-timeout", "2s"}, args...)...)
}

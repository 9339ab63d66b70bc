package server

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skeinmesh/skein/internal/mesh"
)

// backendRef is the object every test config is made from.
var backendRef = ObjectKey{Kind: "MeshService", Namespace: "shop", Name: "backend"}

// spec is what a test's Generator currently produces.
type spec struct {
	// port is the backend endpoint's port; changing it changes the EDS resource only.
	port uint32
	// generation is backendRef's generation in the config's Sources.
	generation int64
	// routeTo is the cluster the route names; "" means "backend".
	routeTo string
	// dropCLA leaves the backend's ClusterLoadAssignment out.
	dropCLA bool
	// revision, when set, goes into every resource, so that changing it
	// changes all four types.
	revision string
}

// testGenerator is a Generator over a spec that tests change.
type testGenerator struct {
	mu    sync.Mutex
	spec  spec
	calls atomic.Int64
}

func newTestGenerator() *testGenerator {
	return &testGenerator{spec: spec{port: 8080, generation: 1}}
}

func (g *testGenerator) set(f func(*spec)) {
	g.mu.Lock()
	f(&g.spec)
	g.mu.Unlock()
}

func (g *testGenerator) Generate(_ context.Context, p mesh.Proxy) (Config, error) {
	g.calls.Add(1)
	g.mu.Lock()
	sp := g.spec
	g.mu.Unlock()
	return testConfig(sp), nil
}

// testConfig is a listener whose HTTP connection manager takes route
// "http-80" from RDS, that route to cluster "backend", the EDS cluster and
// its one endpoint at 127.0.0.1:port.
func testConfig(sp spec) Config {
	routeTo := sp.routeTo
	if routeTo == "" {
		routeTo = "backend"
	}
	cluster := &clusterv3.Cluster{
		Name:                 "backend",
		AltStatName:          sp.revision,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &core.ConfigSource{
			ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		}},
	}
	cla := &endpointv3.ClusterLoadAssignment{
		ClusterName: "backend",
		Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address:  socketAddress("127.0.0.1", sp.port),
				Hostname: sp.revision,
			}},
		}}}},
	}
	rc := &routev3.RouteConfiguration{
		Name: "http-80",
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "backend" + sp.revision,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: routeTo},
				}},
			}},
		}},
	}
	hcm, err := anypb.New(&hcmv3.HttpConnectionManager{
		StatPrefix: "http-80" + sp.revision,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: "http-80",
			ConfigSource: &core.ConfigSource{
				ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
			},
		}},
	})
	if err != nil {
		panic(err)
	}
	lis := &listenerv3.Listener{
		Name:    "listener-80",
		Address: socketAddress("0.0.0.0", 80),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm},
		}}}},
	}
	endpoints := []types.Resource{cla}
	if sp.dropCLA {
		endpoints = nil
	}
	return Config{
		Resources: map[string][]types.Resource{
			resource.ClusterType:  {cluster},
			resource.EndpointType: endpoints,
			resource.ListenerType: {lis},
			resource.RouteType:    {rc},
		},
		Sources: []mesh.ObjectRef{{Kind: backendRef.Kind, Namespace: backendRef.Namespace, Name: backendRef.Name, Generation: sp.generation}},
	}
}

func socketAddress(ip string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address: ip, PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}

// testServer is a Server serving on a real gRPC server on 127.0.0.1, and a
// client connection to it.
type testServer struct {
	*Server
	conn *grpc.ClientConn
	reg  *prometheus.Registry
}

// startServer starts a Server with o (Quiet and MaxDelay short unless set)
// on 127.0.0.1:0 and runs it until the test ends.
func startServer(t *testing.T, o Options) *testServer {
	t.Helper()
	if o.Quiet == 0 {
		o.Quiet = 10 * time.Millisecond
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 100 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	o.Registry = reg
	s := New(o)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.Register(g)
	served := make(chan struct{})
	go func() { _ = g.Serve(lis); close(served) }()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	go func() { _ = s.Start(ctx); close(started) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		<-started
		g.Stop()
		<-served
	})
	return &testServer{Server: s, conn: conn, reg: reg}
}

// testCtx is a context that ends with the test, or after a generous timeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

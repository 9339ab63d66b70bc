package xdsclient

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

const nodeID = "sidecar~10.0.0.1~app-0.default~default.svc.cluster.local"

// request is what the server's callbacks saw of one client request.
type request struct {
	delta        bool
	typeURL      string
	version      string // state of the world only
	nonce        string
	errorDetail  string // "" for an ACK or an initial request
	nack         bool
	initVersions map[string]string // delta only
}

// xdsServer is a real go-control-plane ADS server on 127.0.0.1.
type xdsServer struct {
	t     *testing.T
	cache cachev3.SnapshotCache
	addr  string
	grpc  *grpc.Server

	mu       sync.Mutex
	requests []request
	auth     []string // authorization metadata of each stream, "" when absent
	extra    []string // x-skein-test metadata of each stream
}

type serverOpts struct {
	ads     bool   // ADS-mode snapshot cache
	addr    string // listen address; "" is 127.0.0.1:0
	noDelta bool   // the delta method answers Unimplemented
	cache   cachev3.SnapshotCache
}

// noDeltaServer is an ADS server that implements only state of the world.
type noDeltaServer struct {
	discoveryv3.AggregatedDiscoveryServiceServer
}

func (noDeltaServer) DeltaAggregatedResources(discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	return status.Error(codes.Unimplemented, "method DeltaAggregatedResources not implemented")
}

func startServer(t *testing.T, o serverOpts) *xdsServer {
	t.Helper()
	s := &xdsServer{t: t, cache: o.cache}
	if s.cache == nil {
		s.cache = cachev3.NewSnapshotCache(o.ads, cachev3.IDHash{}, nil)
	}
	addr := o.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lis net.Listener
	var err error
	// A restarted server may have to wait for its old socket to go.
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
		StreamRequestFunc: func(_ int64, r *discoveryv3.DiscoveryRequest) error {
			s.record(request{typeURL: r.GetTypeUrl(), version: r.GetVersionInfo(), nonce: r.GetResponseNonce(),
				errorDetail: r.GetErrorDetail().GetMessage(), nack: r.GetErrorDetail() != nil})
			return nil
		},
		StreamDeltaRequestFunc: func(_ int64, r *discoveryv3.DeltaDiscoveryRequest) error {
			s.record(request{delta: true, typeURL: r.GetTypeUrl(), nonce: r.GetResponseNonce(),
				errorDetail: r.GetErrorDetail().GetMessage(), nack: r.GetErrorDetail() != nil,
				initVersions: r.GetInitialResourceVersions()})
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	xds := serverv3.NewServer(ctx, s.cache, cb)
	s.grpc = grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		s.mu.Lock()
		s.auth = append(s.auth, strings.Join(md.Get("authorization"), ","))
		s.extra = append(s.extra, strings.Join(md.Get("x-skein-test"), ","))
		s.mu.Unlock()
		return handler(srv, ss)
	}))
	var ads discoveryv3.AggregatedDiscoveryServiceServer = xds
	if o.noDelta {
		ads = noDeltaServer{xds}
	}
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(s.grpc, ads)
	go s.grpc.Serve(lis)
	t.Cleanup(func() { s.grpc.Stop(); cancel() })
	return s
}

func (s *xdsServer) record(r request) {
	s.mu.Lock()
	s.requests = append(s.requests, r)
	s.mu.Unlock()
}

func (s *xdsServer) seen() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *xdsServer) streamsAuth() (auth, extra []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auth), slices.Clone(s.extra)
}

func (s *xdsServer) set(snap *cachev3.Snapshot) {
	s.t.Helper()
	if err := s.cache.SetSnapshot(context.Background(), nodeID, snap); err != nil {
		s.t.Fatal(err)
	}
}

// acked says whether the server saw an ACK of typeURL (of version, for
// state of the world, when version is not "").
func (s *xdsServer) acked(typeURL, version string) bool {
	for _, r := range s.seen() {
		if r.typeURL == typeURL && r.nonce != "" && !r.nack && (r.delta || version == "" || r.version == version) {
			return true
		}
	}
	return false
}

func (s *xdsServer) nacks(typeURL string) []request {
	var out []request
	for _, r := range s.seen() {
		if r.typeURL == typeURL && r.nack {
			out = append(out, r)
		}
	}
	return out
}

// snapshot builds a snapshot: cluster "backend" (EDS) with its endpoints,
// route configuration "http", and one listener per name (on ports from
// 10000). Only the listeners depend on the arguments.
func snapshot(t *testing.T, version string, listeners ...string) *cachev3.Snapshot {
	t.Helper()
	cluster := &clusterv3.Cluster{
		Name:                 "backend",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		}},
	}
	cla := &endpointv3.ClusterLoadAssignment{
		ClusterName: "backend",
		Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: sockAddr("127.0.0.1", 8080)}},
		}}}},
	}
	route := &routev3.RouteConfiguration{Name: "http", VirtualHosts: []*routev3.VirtualHost{{
		Name: "backend", Domains: []string{"*"},
		Routes: []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "backend"}}},
		}},
	}}}
	var ls []types.Resource
	for i, name := range listeners {
		ls = append(ls, &listenerv3.Listener{Name: name, Address: sockAddr("127.0.0.1", uint32(10000+i))})
	}
	snap, err := cachev3.NewSnapshot(version, map[resource.Type][]types.Resource{
		resource.ClusterType:  {cluster},
		resource.EndpointType: {cla},
		resource.ListenerType: ls,
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

// apply is one Handler call.
type apply struct {
	typeURL string
	names   []string // sorted
}

// recorder is a Handler that records every call and refuses listeners whose
// name contains "bad", as a proxy refuses a resource it cannot compile.
type recorder struct {
	mu      sync.Mutex
	calls   []apply
	current map[string]map[string]*anypb.Any // the accepted sets, by type
	states  []State
}

func newRecorder() *recorder { return &recorder{current: map[string]map[string]*anypb.Any{}} }

func (r *recorder) Apply(typeURL string, resources map[string]*anypb.Any) error {
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range resources {
			if !yield(n) {
				return
			}
		}
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, apply{typeURL, names})
	if typeURL == ListenerType {
		for _, n := range names {
			if strings.Contains(n, "bad") {
				return fmt.Errorf("listener %q: address.socket_address.port_value: port 10001 is taken by listener %q", n, "l1")
			}
		}
	}
	r.current[typeURL] = resources
	return nil
}

func (r *recorder) onState(s State) {
	r.mu.Lock()
	r.states = append(r.states, s)
	r.mu.Unlock()
}

func (r *recorder) lastState() (State, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.states) == 0 {
		return Disconnected, 0
	}
	return r.states[len(r.states)-1], len(r.states)
}

func (r *recorder) applies() []apply {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// names is the accepted set of typeURL's names, sorted.
func (r *recorder) names(typeURL string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n := range r.current[typeURL] {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// resource is the accepted resource name of typeURL, nil when absent.
func (r *recorder) resource(typeURL, name string) *anypb.Any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current[typeURL][name]
}

// runClient runs the client until the test ends.
func runClient(t *testing.T, o Options, h Handler) {
	t.Helper()
	if o.DialOptions == nil {
		o.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	if o.Node == nil {
		o.Node = &corev3.Node{Id: nodeID, Cluster: "app"}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, h) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return 5s after its context ended")
		}
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// eventually fails the test unless cond holds within d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
	}
}

func marshal(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// protocols are the client's two modes and the cache's two modes.
var protocols = []struct {
	name  string
	delta bool
	ads   bool
}{
	{"sotw/ads-cache", false, true},
	{"sotw/plain-cache", false, false},
	{"delta/ads-cache", true, true},
	{"delta/plain-cache", true, false},
}

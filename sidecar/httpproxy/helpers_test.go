package httpproxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"golang.org/x/net/http2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/skeinmesh/skein/sidecar/http1"
	"github.com/skeinmesh/skein/sidecar/listener"
	"github.com/skeinmesh/skein/sidecar/router"
	"github.com/skeinmesh/skein/sidecar/upstream"
)

// clusterSet is a fixed Clusters.
type clusterSet map[string]*upstream.Cluster

func (c clusterSet) Get(name string) *upstream.Cluster { return c[name] }

// rdsTables is an RDS Routes whose tables tests swap.
type rdsTables struct {
	mu sync.Mutex
	m  map[string]*router.Table
}

func (r *rdsTables) Table(name string) *router.Table {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[name]
}

func (r *rdsTables) set(t testing.TB, rc *routev3.RouteConfiguration) {
	t.Helper()
	tb, err := router.Compile(rc)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*router.Table{}
	}
	r.m[rc.Name] = tb
}

// cluster compiles a STATIC cluster of addrs ("ip:port"); h2 makes it
// speak HTTP/2 (prior knowledge).
func cluster(t testing.TB, name string, h2 bool, addrs ...string) *upstream.Cluster {
	t.Helper()
	lle := &endpointv3.LocalityLbEndpoints{}
	for _, a := range addrs {
		ap := netip.MustParseAddrPort(a)
		lle.LbEndpoints = append(lle.LbEndpoints, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: ap.Addr().String(), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())},
			}}},
		}}})
	}
	pb := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment:       &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{lle}},
		ConnectTimeout:       durationpb.New(time.Second),
	}
	if h2 {
		opts, _ := anypb.New(&upstreamhttpv3.HttpProtocolOptions{
			UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
			}},
		})
		pb.TypedExtensionProtocolOptions = map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": opts}
	}
	c, err := upstream.Compile(pb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// routerFilter is the router HTTP filter.
func routerFilter() *hcmv3.HttpFilter {
	a, _ := anypb.New(&routerv3.Router{})
	return &hcmv3.HttpFilter{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}
}

// inline is an HCM with rc inline and the router as its only filter.
func inline(rc *routev3.RouteConfiguration) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix:     "test",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc},
		HttpFilters:    []*hcmv3.HttpFilter{routerFilter()},
	}
}

// vhost is a virtual host for domains with routes.
func vhost(name string, domains []string, routes ...*routev3.Route) *routev3.VirtualHost {
	return &routev3.VirtualHost{Name: name, Domains: domains, Routes: routes}
}

// toCluster is a prefix route to a cluster with no timeout.
func toCluster(prefix, cluster string) *routev3.Route {
	return &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
			Timeout:          durationpb.New(0),
		}},
	}
}

// routeConfig is a RouteConfiguration of vhosts.
func routeConfig(name string, vhs ...*routev3.VirtualHost) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: vhs}
}

// proxy is a Handler serving a loopback listener.
type proxy struct {
	addr  string
	h     *Handler
	conns atomic.Int64
}

// startProxy compiles hcm and serves it on 127.0.0.1, calling ServeConn
// for every connection as the listener package does (without detection:
// the Handler tells HTTP/2 by its preface).
func startProxy(t testing.TB, hcm *hcmv3.HttpConnectionManager, deps Deps) *proxy {
	t.Helper()
	h, err := Compile(hcm, deps)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxy{addr: ln.Addr().String(), h: h}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				info := &listener.ConnInfo{
					Listener:    "test",
					Source:      c.RemoteAddr().(*net.TCPAddr).AddrPort(),
					Local:       c.LocalAddr().(*net.TCPAddr).AddrPort(),
					Destination: c.LocalAddr().(*net.TCPAddr).AddrPort(),
				}
				h.ServeConn(ctx, c, info)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		cancel()
		wg.Wait()
	})
	return p
}

// backend is a net/http server on 127.0.0.1 counting its connections.
type backend struct {
	addr  string
	srv   *http.Server
	conns atomic.Int64
	reqs  atomic.Int64
}

func startBackend(t testing.TB, h http.HandlerFunc) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{addr: ln.Addr().String()}
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.reqs.Add(1)
			h(w, r)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				b.conns.Add(1)
			}
		},
	}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

// named answers with its name in X-Backend and the request's path and
// query in X-Path, echoing request headers whose names start with "X-" as
// "Echo-<name>".
func named(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Path", r.URL.RequestURI())
		w.Header().Set("X-Host", r.Host)
		for k, vs := range r.Header {
			if len(k) > 2 && k[:2] == "X-" {
				for _, v := range vs {
					w.Header().Add("Echo-"+k, v)
				}
			}
		}
		w.Write([]byte("hello from " + name))
	}
}

// client is an HTTP/1.1 client through the proxy counting its dials.
func client(t testing.TB, proxyAddr string) (*http.Client, *atomic.Int64) {
	var dials atomic.Int64
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", proxyAddr)
		},
		MaxIdleConnsPerHost: 10,
		DisableCompression:  true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}, &dials
}

func itoaT(n int) string { return strconv.Itoa(n) }

func protoClone[M proto.Message](m M) M { return proto.Clone(m).(M) }

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// http2Server serves h2c (prior knowledge) connections.
type http2Server struct{}

func (http2Server) serve(ln net.Listener, h http.HandlerFunc) {
	srv := &http2.Server{}
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go srv.ServeConn(c, &http2.ServeConnOpts{Handler: h})
	}
}

// closingBackend is an HTTP/1.1 backend on loopback that answers each
// connection's first request with 200 "ok" and closes the connection just
// after, without saying so (no Connection: close); accepted counts the
// connections.
func closingBackend(t testing.TB) (addr string, accepted *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				br, bw := http1.NewReader(c), http1.NewWriter(c)
				var req http1.RequestHead
				if http1.ParseRequestHead(br, &req) != nil {
					return
				}
				bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				bw.Flush()
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

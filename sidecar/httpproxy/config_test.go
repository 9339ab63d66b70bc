package httpproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/skeinmesh/skein/sidecar/listener"
	"github.com/skeinmesh/skein/sidecar/stats"
)

func TestRDSSwapKeepsRequestsInFlightOnTheirRoute(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	a := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		w.Header().Set("X-Backend", "a")
	})
	b := startBackend(t, named("b"))
	routes := &rdsTables{}
	routes.set(t, routeConfig("80", vhost("all", []string{"*"}, toCluster("/", "a"))))
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "rds",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: "80",
			ConfigSource:    &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{routerFilter()},
	}
	p := startProxy(t, hcm, Deps{Routes: routes, Clusters: clusterSet{"a": cluster(t, "a", false, a.addr), "b": cluster(t, "b", false, b.addr)}})
	c, _ := client(t, p.addr)
	type result struct {
		backend string
		err     error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := c.Get("http://svc/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		resp.Body.Close()
		slow <- result{backend: resp.Header.Get("X-Backend")}
	}()
	<-arrived
	routes.set(t, routeConfig("80", vhost("all", []string{"*"}, toCluster("/", "b"))))
	resp, err := c.Get("http://svc/next")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Backend"); got != "b" {
		t.Errorf("request after the swap went to %q, want b", got)
	}
	close(release)
	if r := <-slow; r.err != nil || r.backend != "a" {
		t.Errorf("request in flight during the swap: %q %v, want a", r.backend, r.err)
	}

	// An unknown route configuration name answers no_route.
	routes.mu.Lock()
	delete(routes.m, "80")
	routes.mu.Unlock()
	resp, err = c.Get("http://svc/next")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get(HeaderReason) != "no_route" {
		t.Errorf("without a table: %d %q", resp.StatusCode, resp.Header.Get(HeaderReason))
	}
}

// denyFilter refuses requests carrying x-deny and marks every response.
type denyFilter struct{ name string }

func (f denyFilter) OnRequest(x *Exchange) Action {
	if v, ok := x.Request.Header("x-deny"); ok {
		x.Reply(403, Reason("denied_by_test_filter"), string(v))
		return Stop
	}
	x.RequestHeaders.Add("x-filtered", f.name)
	return Continue
}

func (f denyFilter) OnResponse(x *Exchange) {
	x.ResponseHeaders.Set("x-filter-saw", itoaT(x.Status))
}

var _ Filter = denyFilter{}

const faultType = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"

func faultFilter() *hcmv3.HttpFilter {
	a, _ := anypb.New(&faultv3.HTTPFault{})
	return &hcmv3.HttpFilter{Name: "envoy.filters.http.fault", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}
}

func TestHTTPFilterChain(t *testing.T) {
	b := startBackend(t, named("b"))
	hcm := inline(routeConfig("rc", vhost("all", []string{"*"}, toCluster("/", "b"))))
	hcm.HttpFilters = append([]*hcmv3.HttpFilter{faultFilter()}, hcm.HttpFilters...)
	deps := Deps{
		Clusters: clusterSet{"b": cluster(t, "b", false, b.addr)},
		Filters: map[string]HTTPFilterFactory{faultType: func(name string, _ *anypb.Any) (Filter, error) {
			return denyFilter{name: name}, nil
		}},
	}
	p := startProxy(t, hcm, deps)
	for _, tc := range []struct {
		name string
		c    *http.Client
	}{
		{"http1", func() *http.Client { c, _ := client(t, p.addr); return c }()},
		{"http2", h2cClient(t, p.addr)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.c.Get("http://svc/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Header.Get("Echo-X-Filtered") != "envoy.filters.http.fault" || resp.Header.Get("X-Filter-Saw") != "200" {
				t.Errorf("forwarded: %v", resp.Header)
			}
			req, _ := http.NewRequest("GET", "http://svc/", nil)
			req.Header.Set("X-Deny", "because")
			resp, err = tc.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 403 || resp.Header.Get(HeaderReason) != "denied_by_test_filter" || string(body) != "because" ||
				resp.Header.Get("X-Filter-Saw") != "403" || resp.Header.Get("X-Backend") != "" {
				t.Errorf("stopped: %d %q %v", resp.StatusCode, body, resp.Header)
			}
		})
	}
}

func TestCompileRefusesWithFieldPaths(t *testing.T) {
	rbac, _ := anypb.New(&rbacv3.RBAC{})
	rc := routeConfig("rc", vhost("all", []string{"*"}, toCluster("/", "c")))
	deps := Deps{Clusters: clusterSet{}}
	for _, tc := range []struct {
		name string
		edit func(*hcmv3.HttpConnectionManager)
		deps *Deps
		want string // substring of the error; "" means accepted
	}{
		{"minimal inline", func(*hcmv3.HttpConnectionManager) {}, nil, ""},
		{"websocket, timeouts, use_remote_address", func(h *hcmv3.HttpConnectionManager) {
			h.UpgradeConfigs = []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
			h.StreamIdleTimeout = durationpb.New(time.Minute)
			h.RequestTimeout = durationpb.New(time.Minute)
			h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{IdleTimeout: durationpb.New(time.Minute)}
			h.UseRemoteAddress = wrapperspb.Bool(true)
			h.CodecType = hcmv3.HttpConnectionManager_HTTP2
		}, nil, ""},
		{"fault filter unregistered", func(h *hcmv3.HttpConnectionManager) {
			h.HttpFilters = append([]*hcmv3.HttpFilter{faultFilter()}, h.HttpFilters...)
		}, nil, "http_filters[0]: envoy.filters.http.fault is not supported yet"},
		{"rbac filter unregistered", func(h *hcmv3.HttpConnectionManager) {
			h.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "envoy.filters.http.rbac", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: rbac}}}, h.HttpFilters...)
		}, nil, "http_filters[0]: envoy.filters.http.rbac is not supported yet"},
		{"optional unknown filter skipped", func(h *hcmv3.HttpConnectionManager) {
			f := faultFilter()
			f.IsOptional = true
			h.HttpFilters = append([]*hcmv3.HttpFilter{f}, h.HttpFilters...)
		}, nil, ""},
		{"router not last", func(h *hcmv3.HttpConnectionManager) {
			h.HttpFilters = append(h.HttpFilters, faultFilter())
		}, nil, "http_filters[0]: the router must be the last HTTP filter"},
		{"no filters", func(h *hcmv3.HttpConnectionManager) { h.HttpFilters = nil }, nil, "http_filters: empty"},
		{"http3", func(h *hcmv3.HttpConnectionManager) { h.CodecType = hcmv3.HttpConnectionManager_HTTP3 }, nil, "codec_type: HTTP3"},
		{"route config error has its path", func(h *hcmv3.HttpConnectionManager) {
			h.GetRouteConfig().VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = nil
		}, nil, "route_config: "},
		{"rds without tables", func(h *hcmv3.HttpConnectionManager) {
			h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "80"}}
		}, nil, "rds: the proxy has no RDS route tables"},
		{"xff trusted hops", func(h *hcmv3.HttpConnectionManager) { h.XffNumTrustedHops = 1 }, nil, "xff_num_trusted_hops"},
		{"unknown field", func(h *hcmv3.HttpConnectionManager) { h.StripTrailingHostDot = true }, nil, "strip_trailing_host_dot: not supported"},
		{"CONNECT upgrades", func(h *hcmv3.HttpConnectionManager) {
			h.UpgradeConfigs = []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "CONNECT"}}
		}, nil, "upgrade_configs[0].upgrade_type"},
		{"negative timeout", func(h *hcmv3.HttpConnectionManager) { h.StreamIdleTimeout = &durationpb.Duration{Seconds: -1} }, nil, "stream_idle_timeout: invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hcm := inline(rc)
			hcm = protoClone(hcm)
			tc.edit(hcm)
			d := deps
			if tc.deps != nil {
				d = *tc.deps
			}
			_, err := Compile(hcm, d)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestThroughListenerManager plugs NewFactory into sidecar/listener: its
// protocol detection hands HTTP/1 and HTTP/2 connections to the Handler.
func TestThroughListenerManager(t *testing.T) {
	b := startBackend(t, named("b"))
	deps := Deps{Clusters: clusterSet{"b": cluster(t, "b", false, b.addr)}}
	m, err := listener.NewManager(listener.Config{
		Dialer:  noDialer{},
		Filters: map[string]listener.FilterFactory{listener.HTTPConnectionManagerType: NewFactory(deps)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	hcmAny, _ := anypb.New(inline(routeConfig("rc", vhost("all", []string{"*"}, toCluster("/", "b")))))
	l := &listenerv3.Listener{
		Name: "http",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0},
		}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcmAny},
		}}}},
	}
	if err := m.Update([]*listenerv3.Listener{l}); err != nil {
		t.Fatal(err)
	}
	addr := m.Addr("http").String()
	c1, _ := client(t, addr)
	for _, c := range []*http.Client{c1, h2cClient(t, addr)} {
		resp, err := c.Get("http://svc/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello from b" {
			t.Errorf("%s: %d %q", resp.Proto, resp.StatusCode, body)
		}
	}
	// A config the HCM refuses fails the listener update, naming the filter.
	bad := inline(routeConfig("rc", vhost("all", []string{"*"}, toCluster("/", "b"))))
	bad.HttpFilters = append([]*hcmv3.HttpFilter{faultFilter()}, bad.HttpFilters...)
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, bad)}
	if err := m.Update([]*listenerv3.Listener{l}); err == nil || !strings.Contains(err.Error(), "envoy.filters.http.fault is not supported yet") {
		t.Errorf("update with an unsupported HTTP filter: %v", err)
	}
}

type noDialer struct{}

func (noDialer) DialCluster(context.Context, string, *listener.ConnInfo) (net.Conn, error) {
	return nil, errors.New("no passthrough in this test")
}

func TestHTTP1ToHTTP2Cluster(t *testing.T) {
	// An h2c backend: the cluster speaks HTTP/2, the client HTTP/1.1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h2s := &http2Server{}
	go h2s.serve(ln, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Proto", r.Proto)
		w.Write(append([]byte(r.URL.RequestURI()+":"), body...))
	})
	t.Cleanup(func() { ln.Close() })
	p := startProxy(t, inline(routeConfig("rc", vhost("all", []string{"*"}, toCluster("/", "h2")))),
		Deps{Clusters: clusterSet{"h2": cluster(t, "h2", true, ln.Addr().String())}})
	c, dials := client(t, p.addr)
	for i := range 5 {
		resp, err := c.Post("http://svc/up?i="+itoaT(i), "text/plain", strings.NewReader("data"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("X-Proto") != "HTTP/2.0" || string(body) != "/up?i="+itoaT(i)+":data" {
			t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
		}
	}
	if dials.Load() != 1 {
		t.Errorf("%d downstream connections, want keep-alive", dials.Load())
	}
}

var _ = netip.Addr{}

func TestStatsCountRequestsPerCluster(t *testing.T) {
	b := startBackend(t, named("b"))
	st := stats.New()
	rc := routeConfig("rc", vhost("all", []string{"*"}, toCluster("/ok", "b"), toCluster("/empty", "empty")))
	p := startProxy(t, inline(rc), Deps{Stats: st, Clusters: clusterSet{"b": cluster(t, "b", false, b.addr), "empty": cluster(t, "empty", false)}})
	c, _ := client(t, p.addr)
	for _, path := range []string{"/ok", "/ok", "/ok", "/empty"} {
		resp, err := c.Get("http://svc" + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	h2 := h2cClient(t, p.addr)
	resp, err := h2.Get("http://svc/ok")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var out strings.Builder
	if err := stats.WriteText(&out, st.Gatherer(), func(s string) bool { return strings.Contains(s, "requests_total") }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`skein_proxy_requests_total{cluster="b",code_class="2xx"}: 4`,
		`skein_proxy_requests_total{cluster="empty",code_class="5xx"}: 1`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %s in\n%s", want, out.String())
		}
	}
}

// TestServeConnEndsWithItsContext: when the proxy gives up on a connection
// (the drain deadline), ServeConn returns soon even while a request waits
// on a silent upstream, or an Upgrade tunnel is idle.
func TestServeConnEndsWithItsContext(t *testing.T) {
	arrived := make(chan struct{}, 2)
	silent := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	ws := wsBackend(t)
	hcm := inline(routeConfig("rc", vhost("all", []string{"*"}, toCluster("/ws", "ws"), toCluster("/", "silent"))))
	hcm.UpgradeConfigs = []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
	h, err := Compile(hcm, Deps{Clusters: clusterSet{"silent": cluster(t, "silent", false, silent.addr), "ws": cluster(t, "ws", false, ws.addr)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, request string
		ready         func(c net.Conn)
	}{
		{"waiting for a response", "GET / HTTP/1.1\r\nHost: svc\r\n\r\n", func(net.Conn) { <-arrived }},
		{"idle tunnel", "GET /ws HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", func(c net.Conn) {
			buf := make([]byte, 1)
			c.Read(buf) // the 101 has started
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				h.ServeConn(ctx, server, &listener.ConnInfo{})
				close(done)
			}()
			io.WriteString(client, tc.request)
			tc.ready(client)
			cancel()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				t.Fatal("ServeConn still running 2s after its context ended")
			}
		})
	}
}

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func TestLocalRepliesAreLoggedAtV1(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{Verbosity: 1})
	p := startProxy(t, inline(routeConfig("rc", vhost("all", []string{"only.example"}, toCluster("/", "c")))), Deps{Clusters: clusterSet{}, Log: log})
	c, _ := client(t, p.addr)
	resp, err := c.Get("http://other.example/some/path")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 1 || !strings.Contains(lines[0], `"reason"="no_route"`) || !strings.Contains(lines[0], `"path"="/some/path"`) {
		t.Fatalf("log lines %q", lines)
	}
}

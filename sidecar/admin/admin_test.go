package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/skeinmesh/skein/sidecar/stats"
)

// fakeSource is a proxy that records what the admin endpoints ask of it.
type fakeSource struct {
	ready    atomic.Bool
	drains   atomic.Int32
	quits    chan struct{}
	dump     []byte
	dumpErr  error
	clusters []ClusterStatus
	onQuit   func()
}

func (f *fakeSource) ConfigDump() ([]byte, error) { return f.dump, f.dumpErr }
func (f *fakeSource) Clusters() []ClusterStatus   { return f.clusters }
func (f *fakeSource) Ready() bool                 { return f.ready.Load() }
func (f *fakeSource) DrainListeners()             { f.drains.Add(1) }
func (f *fakeSource) Quit() {
	if f.onQuit != nil {
		f.onQuit()
	}
	f.quits <- struct{}{}
}

var _ Source = (*fakeSource)(nil)

func newFake() *fakeSource {
	return &fakeSource{
		quits: make(chan struct{}, 1),
		dump:  []byte(`{"configs":[]}`),
		clusters: []ClusterStatus{
			{Name: "outbound|80||a.default.svc.cluster.local", Hosts: []HostStatus{
				{Address: "10.0.0.1:8080", ActiveRequests: 3, ActiveConnections: 2, Weight: 1},
				{Address: "10.0.0.2:8080", HealthFlags: []string{FlagFailedEDSHealth, FlagFailedOutlierCheck}, Weight: 2, Priority: 1},
			}},
			{Name: "empty"},
		},
	}
}

// start serves h on a real listener from Listen and returns its base URL
// and server.
func start(t *testing.T, h http.Handler) (string, *http.Server) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("admin server: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), srv
}

func do(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestEndpoints(t *testing.T) {
	src := newFake()
	st := stats.New()
	st.Cluster("outbound|80||a.default.svc.cluster.local").RequestDone(200, time.Millisecond, 10, 20)
	st.Cluster("outbound|80||a.default.svc.cluster.local").ConnOpened()
	h := &Handler{Source: src, Stats: st.Gatherer(), Level: &slog.LevelVar{}}
	base, _ := start(t, h)

	cases := []struct {
		name string
		// method and path are sent; want is the status, body what the body
		// holds (all of it when exact), allow the Allow header of a 405.
		method, path string
		want         int
		body         string
		exact        bool
		allow        string
	}{
		{"index", "GET", "/", 200, "POST /quitquitquit: exit gracefully", false, ""},
		{"help", "GET", "/help", 200, "GET /clusters: ", false, ""},
		{"unknown path", "GET", "/certs", 404, "", false, ""},
		{"not ready", "GET", "/ready", 503, "NOT READY\n", true, ""},
		{"ready takes GET", "POST", "/ready", 405, "", false, "GET, HEAD"},
		{"config_dump", "GET", "/config_dump", 200, `{"configs":[]}`, true, ""},
		{"config_dump refuses Envoy options it lacks", "GET", "/config_dump?resource=dynamic_active_clusters", 400, "unsupported parameter resource", false, ""},
		{"clusters text", "GET", "/clusters", 200, strings.Join([]string{
			"outbound|80||a.default.svc.cluster.local::observability_name::outbound|80||a.default.svc.cluster.local",
			"outbound|80||a.default.svc.cluster.local::10.0.0.1:8080::cx_active::2",
			"outbound|80||a.default.svc.cluster.local::10.0.0.1:8080::rq_active::3",
			"outbound|80||a.default.svc.cluster.local::10.0.0.1:8080::health_flags::healthy",
			"outbound|80||a.default.svc.cluster.local::10.0.0.1:8080::weight::1",
			"outbound|80||a.default.svc.cluster.local::10.0.0.1:8080::priority::0",
			"outbound|80||a.default.svc.cluster.local::10.0.0.2:8080::cx_active::0",
			"outbound|80||a.default.svc.cluster.local::10.0.0.2:8080::rq_active::0",
			"outbound|80||a.default.svc.cluster.local::10.0.0.2:8080::health_flags::/failed_eds_health/failed_outlier_check",
			"outbound|80||a.default.svc.cluster.local::10.0.0.2:8080::weight::2",
			"outbound|80||a.default.svc.cluster.local::10.0.0.2:8080::priority::1",
			"empty::observability_name::empty",
		}, "\n") + "\n", true, ""},
		{"clusters bad format", "GET", "/clusters?format=yaml", 400, "", false, ""},
		{"stats text", "GET", "/stats", 200, "skein_proxy_requests_total{cluster=\"outbound|80||a.default.svc.cluster.local\",code_class=\"2xx\"}: 1\n", false, ""},
		{"stats filter", "GET", "/stats?filter=^skein_proxy_upstream_cx_(active|total)", 200,
			"skein_proxy_upstream_cx_active{cluster=\"outbound|80||a.default.svc.cluster.local\"}: 1\n" +
				"skein_proxy_upstream_cx_total{cluster=\"outbound|80||a.default.svc.cluster.local\"}: 1\n", true, ""},
		{"stats bad filter", "GET", "/stats?filter=(", 400, "filter", false, ""},
		{"stats bad format", "GET", "/stats?format=json", 400, "", false, ""},
		{"drain takes POST", "GET", "/drain_listeners", 405, "", false, "POST"},
		{"drain refuses Envoy options it lacks", "POST", "/drain_listeners?inboundonly", 400, "unsupported parameter inboundonly", false, ""},
		{"quit takes POST", "GET", "/quitquitquit", 405, "", false, "POST"},
		{"logging", "GET", "/logging", 200, "level: info\n", true, ""},
		{"logging level takes POST", "GET", "/logging?level=debug", 405, "POST", false, "POST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := do(t, tc.method, base+tc.path)
			if code != tc.want {
				t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, code, tc.want, body)
			}
			if tc.exact && body != tc.body || !tc.exact && !strings.Contains(body, tc.body) {
				t.Errorf("%s %s answered\n%s\nwant (exact %v)\n%s", tc.method, tc.path, body, tc.exact, tc.body)
			}
			if tc.allow != "" && hdr.Get("Allow") != tc.allow {
				t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, hdr.Get("Allow"), tc.allow)
			}
		})
	}
	if n := src.drains.Load(); n != 0 {
		t.Errorf("refused drain requests drained %d times", n)
	}
	select {
	case <-src.quits:
		t.Error("GET /quitquitquit quit")
	default:
	}

	src.ready.Store(true)
	if code, _, body := do(t, "GET", base+"/ready"); code != 200 || body != "LIVE\n" {
		t.Errorf("ready: %d %q, want 200 LIVE", code, body)
	}
	src.dumpErr = errors.New("marshal: boom")
	if code, _, body := do(t, "GET", base+"/config_dump"); code != 500 || !strings.Contains(body, "boom") {
		t.Errorf("config_dump failing: %d %q, want 500 naming the error", code, body)
	}
	if code, _, _ := do(t, "POST", base+"/drain_listeners"); code != 200 || src.drains.Load() != 1 {
		t.Errorf("POST /drain_listeners: %d, drained %d times; want 200 and once", code, src.drains.Load())
	}
	if code, _, _ := do(t, "POST", base+"/quitquitquit"); code != 200 {
		t.Errorf("POST /quitquitquit: %d", code)
	}
	select {
	case <-src.quits:
	case <-time.After(5 * time.Second):
		t.Error("POST /quitquitquit did not quit")
	}
}

func TestClustersJSON(t *testing.T) {
	base, _ := start(t, &Handler{Source: newFake()})
	code, hdr, body := do(t, "GET", base+"/clusters?format=json")
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s: %s", code, hdr.Get("Content-Type"), body)
	}
	var got adminv3.Clusters
	if err := protojson.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("not Envoy's admin.v3.Clusters: %v\n%s", err, body)
	}
	if len(got.GetClusterStatuses()) != 2 || len(got.GetClusterStatuses()[0].GetHostStatuses()) != 2 {
		t.Fatalf("want 2 clusters, the first with 2 hosts:\n%s", body)
	}
	ok, bad := got.GetClusterStatuses()[0].GetHostStatuses()[0], got.GetClusterStatuses()[0].GetHostStatuses()[1]
	if sa := ok.GetAddress().GetSocketAddress(); sa.GetAddress() != "10.0.0.1" || sa.GetPortValue() != 8080 {
		t.Errorf("address %v, want 10.0.0.1:8080", sa)
	}
	if ok.GetHealthStatus().GetEdsHealthStatus() != corev3.HealthStatus_HEALTHY || ok.GetWeight() != 1 {
		t.Errorf("healthy host: %v", ok)
	}
	stat := map[string]uint64{}
	for _, m := range ok.GetStats() {
		stat[m.GetName()] = m.GetValue()
	}
	if stat["cx_active"] != 2 || stat["rq_active"] != 3 {
		t.Errorf("host stats %v, want cx_active 2 and rq_active 3", stat)
	}
	if hs := bad.GetHealthStatus(); hs.GetEdsHealthStatus() != corev3.HealthStatus_UNHEALTHY || !hs.GetFailedOutlierCheck() || bad.GetPriority() != 1 {
		t.Errorf("unhealthy host: %v", bad)
	}
}

func TestStatsPrometheus(t *testing.T) {
	st := stats.New()
	st.Listener("virtualOutbound").ConnAccepted()
	base, _ := start(t, &Handler{Source: newFake(), Stats: st.Gatherer()})
	for _, path := range []string{"/stats?format=prometheus", stats.PrometheusPath} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		mf, err := p.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := mf["skein_proxy_downstream_cx_total"].GetMetric(); len(got) != 1 || got[0].GetCounter().GetValue() != 1 {
			t.Errorf("%s: downstream_cx_total %v, want one series at 1", path, got)
		}
	}
}

func TestLogging(t *testing.T) {
	level := &slog.LevelVar{}
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}))
	base, _ := start(t, &Handler{Source: newFake(), Level: level})
	cases := []struct {
		name string
		// query is POSTed to /logging; want is the status and level the
		// level after it.
		query string
		want  int
		level slog.Level
	}{
		{"debug", "?level=debug", 200, slog.LevelDebug},
		{"Envoy's warning", "?level=warning", 200, slog.LevelWarn},
		{"any case", "?level=ERROR", 200, slog.LevelError},
		{"unknown level", "?level=trace", 400, slog.LevelError},
		{"no level", "", 400, slog.LevelError},
		{"a logger Envoy would have", "?level=info&upstream=debug", 400, slog.LevelError},
		{"info", "?level=info", 200, slog.LevelInfo},
	}
	for _, tc := range cases {
		code, _, body := do(t, "POST", base+"/logging"+tc.query)
		if code != tc.want || level.Level() != tc.level {
			t.Errorf("%s: %d, level %v; want %d, %v: %s", tc.name, code, level.Level(), tc.want, tc.level, body)
		}
	}
	do(t, "POST", base+"/logging?level=debug")
	if !logger.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("after level=debug the proxy's logger does not log debug")
	}
	if _, _, body := do(t, "GET", base+"/logging"); body != "level: debug\n" {
		t.Errorf("GET /logging: %q", body)
	}
}

func TestOptionalEndpoints(t *testing.T) {
	base, _ := start(t, &Handler{Source: newFake()})
	for _, path := range []string{"/stats", stats.PrometheusPath, "/logging"} {
		if code, _, _ := do(t, "GET", base+path); code != 404 {
			t.Errorf("without Stats and Level, GET %s: %d, want 404", path, code)
		}
	}
	if _, _, index := do(t, "GET", base+"/"); strings.Contains(index, "/stats") || strings.Contains(index, "/logging") {
		t.Errorf("index lists endpoints that are off:\n%s", index)
	}
}

// TestQuitThatStopsTheAdminServer: Quit may shut the admin server down,
// which waits for handlers in flight; answering must not wait for Quit.
func TestQuitThatStopsTheAdminServer(t *testing.T) {
	src := newFake()
	base, srv := start(t, &Handler{Source: src})
	stopped := make(chan error, 1)
	src.onQuit = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopped <- srv.Shutdown(ctx)
	}
	if code, _, body := do(t, "POST", base+"/quitquitquit"); code != 200 || body != "OK\n" {
		t.Errorf("POST /quitquitquit: %d %q", code, body)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("shutting down from Quit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Quit's shutdown never finished")
	}
	<-src.quits
}

func TestListen(t *testing.T) {
	cases := []struct {
		name string
		// addr is given to Listen; ok is whether it listens.
		addr string
		ok   bool
	}{
		{"IPv4 loopback", "127.0.0.1:0", true},
		{"localhost", "localhost:0", true},
		{"all interfaces", ":0", false},
		{"IPv4 any", "0.0.0.0:0", false},
		{"IPv6 any", "[::]:0", false},
		{"a pod address", "10.1.2.3:0", false},
		{"no port", "127.0.0.1", false},
	}
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		cases = append(cases, struct {
			name string
			addr string
			ok   bool
		}{"IPv6 loopback", "[::1]:0", true})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := Listen(tc.addr)
			if !tc.ok {
				if err == nil {
					ln.Close()
					t.Fatalf("Listen(%q) listened on %s", tc.addr, ln.Addr())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
				t.Errorf("listening on %s, not loopback", ip)
			}
		})
	}
}

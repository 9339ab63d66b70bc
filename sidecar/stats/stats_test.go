package stats

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestScrape(t *testing.T) {
	s := New()
	a := s.Cluster("outbound|80||a.default.svc.cluster.local")
	a.ConnOpened()
	a.ConnOpened()
	a.ConnClosed()
	a.ConnectFailed()
	a.RequestDone(200, 3*time.Millisecond, 1000, 100)
	a.RequestDone(204, 20*time.Millisecond, 0, 100)
	a.RequestDone(503, 2*time.Second, 19, 0)
	a.RequestDone(0, time.Minute, -1, -1) // no response; negative byte counts are ignored
	a.Bytes(5, 7)
	in := s.Listener("virtualInbound")
	in.ConnAccepted()
	in.ConnAccepted()
	in.ConnClosed()
	in.Bytes(300, 400)
	s.ConfigUpdate("type.googleapis.com/envoy.config.cluster.v3.Cluster", true)
	s.ConfigUpdate("cds", true)
	s.ConfigUpdate("type.googleapis.com/envoy.config.listener.v3.Listener", false)
	s.ConfigUpdate("type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", false)
	s.SetConfigVersion("type.googleapis.com/envoy.config.cluster.v3.Cluster", "v1")
	s.SetConfigVersion("type.googleapis.com/envoy.config.cluster.v3.Cluster", "v2")

	base := serve(t, s.Handler())
	for _, path := range []string{PrometheusPath, MetricsPath} {
		t.Run(path, func(t *testing.T) {
			mf := scrape(t, base+path)
			cl := map[string]string{"cluster": "outbound|80||a.default.svc.cluster.local"}
			lis := map[string]string{"listener": "virtualInbound"}
			with := func(m map[string]string, k, v string) map[string]string {
				out := map[string]string{k: v}
				for k, v := range m {
					out[k] = v
				}
				return out
			}
			cases := []struct {
				// family and labels pick one series; want is its value.
				family string
				labels map[string]string
				want   float64
			}{
				{"skein_proxy_requests_total", with(cl, "code_class", "2xx"), 2},
				{"skein_proxy_requests_total", with(cl, "code_class", "5xx"), 1},
				{"skein_proxy_requests_total", with(cl, "code_class", "none"), 1},
				{"skein_proxy_requests_total", with(cl, "code_class", "4xx"), 0},
				{"skein_proxy_upstream_cx_active", cl, 1},
				{"skein_proxy_upstream_cx_total", cl, 2},
				{"skein_proxy_upstream_cx_connect_failures_total", cl, 1},
				{"skein_proxy_upstream_bytes_received_total", cl, 1024},
				{"skein_proxy_upstream_bytes_sent_total", cl, 207},
				{"skein_proxy_downstream_cx_active", lis, 1},
				{"skein_proxy_downstream_cx_total", lis, 2},
				{"skein_proxy_downstream_bytes_received_total", lis, 300},
				{"skein_proxy_downstream_bytes_sent_total", lis, 400},
				{"skein_proxy_config_updates_total", map[string]string{"type": "cds", "result": "accepted"}, 2},
				{"skein_proxy_config_updates_total", map[string]string{"type": "lds", "result": "rejected"}, 1},
				{"skein_proxy_config_updates_total", map[string]string{"type": "other", "result": "rejected"}, 1},
				{"skein_proxy_config_updates_total", map[string]string{"type": "eds", "result": "accepted"}, 0},
				{"skein_proxy_config_version_info", map[string]string{"type": "cds", "version": "v2"}, 1},
			}
			for _, tc := range cases {
				m := find(mf, tc.family, tc.labels)
				if m == nil {
					t.Errorf("%s%v: no series", tc.family, tc.labels)
					continue
				}
				if got := value(m); got != tc.want {
					t.Errorf("%s%v = %v, want %v", tc.family, tc.labels, got, tc.want)
				}
			}
			if n := len(mf["skein_proxy_config_version_info"].GetMetric()); n != 1 {
				t.Errorf("config_version_info has %d series, want 1 (v1 replaced by v2)", n)
			}

			h := find(mf, "skein_proxy_request_duration_seconds", cl).GetHistogram()
			if h.GetSampleCount() != 4 {
				t.Errorf("duration count %d, want 4", h.GetSampleCount())
			}
			buckets := map[float64]uint64{}
			for _, b := range h.GetBucket() {
				buckets[b.GetUpperBound()] = b.GetCumulativeCount()
			}
			// 3ms falls in le=0.005, 20ms in le=0.025, 2s in le=2.5, 1m above 30s.
			for le, want := range map[float64]uint64{.0025: 0, .005: 1, .025: 2, 1: 2, 2.5: 3, 30: 3} {
				if buckets[le] != want {
					t.Errorf("duration bucket le=%v holds %d, want %d", le, buckets[le], want)
				}
			}
			for _, f := range []string{"go_goroutines", "process_resident_memory_bytes"} {
				if mf[f] == nil {
					t.Errorf("no %s: runtime and process collectors missing", f)
				}
			}
		})
	}

	for _, tc := range []struct {
		// method and path are sent to the metrics port; want is its status.
		method, path string
		want         int
	}{
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/stats", http.StatusNotFound},
		{http.MethodPost, MetricsPath, http.StatusMethodNotAllowed},
		{http.MethodHead, PrometheusPath, http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

func TestForgetCluster(t *testing.T) {
	s := New()
	a, b := s.Cluster("a"), s.Cluster("b")
	if s.Cluster("a") != a {
		t.Error("Cluster(a) twice returned two handles: a kept cluster would lose its counts")
	}
	a.RequestDone(200, time.Millisecond, 1, 1)
	a.ConnOpened()
	b.RequestDone(200, time.Millisecond, 1, 1)
	s.Listener("l1").ConnAccepted()
	s.Listener("l2").ConnAccepted()

	s.ForgetCluster("a")
	s.ForgetListener("l1")
	s.ForgetCluster("never-created")
	a.RequestDone(500, time.Millisecond, 1, 1) // a request in flight on the old config
	a.ConnClosed()

	base := serve(t, s.Handler())
	mf := scrape(t, base+PrometheusPath)
	counts := map[string]int{}
	for _, f := range mf {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "cluster" || l.GetName() == "listener" {
					counts[l.GetValue()]++
				}
			}
		}
	}
	if counts["a"] != 0 || counts["l1"] != 0 {
		t.Errorf("forgotten cluster a has %d series and listener l1 %d, want none", counts["a"], counts["l1"])
	}
	// b: 6 code classes, the histogram, cx active, total, failures, rx, tx.
	if counts["b"] != 12 || counts["l2"] != 4 {
		t.Errorf("cluster b has %d series (want 12), listener l2 %d (want 4)", counts["b"], counts["l2"])
	}

	a2 := s.Cluster("a")
	if a2 == a {
		t.Error("Cluster(a) after ForgetCluster returned the old handle")
	}
	mf = scrape(t, base+PrometheusPath)
	if m := find(mf, "skein_proxy_requests_total", map[string]string{"cluster": "a", "code_class": "5xx"}); m != nil {
		t.Errorf("re-created cluster a, unused: requests_total 5xx = %v, want no series yet", m)
	}
	a2.RequestDone(200, time.Millisecond, 1, 1)
	mf = scrape(t, base+PrometheusPath)
	if m := find(mf, "skein_proxy_requests_total", map[string]string{"cluster": "a", "code_class": "5xx"}); m == nil || value(m) != 0 {
		t.Errorf("re-created cluster a after a 200: requests_total 5xx = %v, want a series at 0 (counts start over)", m)
	}
}

// TestUnusedClustersHaveNoSeries: a sidecar is configured with every
// Service of the mesh; only the clusters it used cost series in a scrape.
func TestUnusedClustersHaveNoSeries(t *testing.T) {
	s := New()
	for i := range 100 {
		s.Cluster("idle-" + strconv.Itoa(i))
	}
	s.Cluster("conn").ConnOpened()
	s.Cluster("failed").ConnectFailed()
	s.Cluster("request").RequestDone(503, time.Millisecond, 0, 0)
	mf := scrape(t, serve(t, s.Handler())+PrometheusPath)
	clusters := map[string]bool{}
	for _, m := range mf["skein_proxy_upstream_cx_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "cluster" {
				clusters[l.GetValue()] = true
			}
		}
	}
	if len(clusters) != 3 || !clusters["conn"] || !clusters["failed"] || !clusters["request"] {
		t.Errorf("clusters with series: %v, want conn, failed and request only", clusters)
	}
}

func TestNilHandlesCountNothing(t *testing.T) {
	var c *Cluster
	var l *Listener
	c.RequestDone(200, time.Second, 1, 1)
	c.Bytes(1, 1)
	c.ConnOpened()
	c.ConnClosed()
	c.ConnectFailed()
	l.ConnAccepted()
	l.ConnClosed()
	l.Bytes(1, 1)
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	s := New()
	c := s.Cluster("outbound|80||a")
	l := s.Listener("virtualOutbound")
	cases := []struct {
		name string
		// f is one event on the request path.
		f func()
	}{
		{"RequestDone", func() { c.RequestDone(200, 1500*time.Microsecond, 512, 128) }},
		{"RequestDone without response", func() { c.RequestDone(0, time.Second, 0, 128) }},
		{"Cluster conn", func() { c.ConnOpened(); c.Bytes(10, 10); c.ConnClosed() }},
		{"Listener conn", func() { l.ConnAccepted(); l.Bytes(10, 10); l.ConnClosed() }},
	}
	for _, tc := range cases {
		if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", tc.name, n)
		}
	}
}

func BenchmarkRequestDone(b *testing.B) {
	c := New().Cluster("outbound|80||a")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.RequestDone(200, time.Millisecond, 512, 128)
		}
	})
}

func TestXDSType(t *testing.T) {
	for in, want := range map[string]string{
		"type.googleapis.com/envoy.config.listener.v3.Listener":                "lds",
		"type.googleapis.com/envoy.config.route.v3.RouteConfiguration":         "rds",
		"type.googleapis.com/envoy.config.cluster.v3.Cluster":                  "cds",
		"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment":   "eds",
		"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret": "sds",
		"eds":                           "eds",
		"":                              "other",
		"type.googleapis.com/evil/Name": "other",
	} {
		if got := xdsType(in); got != want {
			t.Errorf("xdsType(%q) = %q, want %q", in, got, want)
		}
	}
}

// serve runs h on a real server on 127.0.0.1 and returns its base URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// scrape gets url and parses it with Prometheus' own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return mf
}

// find returns the series of family whose labels are exactly labels.
func find(mf map[string]*dto.MetricFamily, family string, labels map[string]string) *dto.Metric {
	for _, m := range mf[family].GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				match = false
			}
		}
		if match {
			return m
		}
	}
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// BenchmarkScrape1000Clusters is one scrape of the metrics port's text
// format with 1,000 clusters (12,000 series): its time, and what it
// allocates beyond the response body, which is discarded.
func BenchmarkScrape1000Clusters(b *testing.B) {
	s := New()
	for i := range 1000 {
		s.Cluster(fmt.Sprintf("outbound|80||svc-%04d.default.svc.cluster.local", i)).RequestDone(200, time.Millisecond, 1, 1)
	}
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, PrometheusPath, nil)
	b.ReportAllocs()
	for b.Loop() {
		w := discard{header: http.Header{}}
		h.ServeHTTP(&w, req)
		if w.code != http.StatusOK {
			b.Fatal(w.code)
		}
	}
}

// discard is a ResponseWriter that keeps the status and drops the body.
type discard struct {
	header http.Header
	code   int
}

func (d *discard) Header() http.Header { return d.header }
func (d *discard) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}
func (d *discard) Write(p []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	return len(p), nil
}

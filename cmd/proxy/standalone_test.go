package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestStandalone runs skein-proxy from an Envoy bootstrap with static
// resources only: a tcp_proxy listener and an HCM listener with inline
// routes, both to a STATIC cluster of a real backend. Traffic flows, the proxy is ready, and admin and metrics show
// the listener, the cluster's host and the connections.
func TestStandalone(t *testing.T) {
	be := startBackend(t, "static-backend")
	lp, hp, ap := freePort(t), freePort(t), freePort(t)
	cfg := lines(
		"node: {id: standalone, cluster: test}",
		"admin: {address: {socket_address: {address: 127.0.0.1, port_value: "+ap+"}}}",
		"static_resources:",
		"  listeners:",
		"  - name: app-tcp",
		"    address: {socket_address: {address: 127.0.0.1, port_value: "+lp+"}}",
		"    filter_chains:",
		"    - filters:",
		"      - name: envoy.filters.network.tcp_proxy",
		"        typed_config:",
		`          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
		"          stat_prefix: app",
		"          cluster: backend",
		httpListener("app-http", hp,
			`{match: {path: /direct}, direct_response: {status: 201, body: {inline_string: direct}}}`,
			`{match: {prefix: /}, route: {cluster: backend}}`),
		"  clusters:",
		"  - name: backend",
		"    type: STATIC",
		"    connect_timeout: 1s",
		"    load_assignment:",
		"      cluster_name: backend",
		"      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: "+
			strings.Split(be.addr, ":")[1]+"}}}}]}]",
	)
	path := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// With -c, admin is the bootstrap's (startProxy passes no
	// --admin-address).
	p := startProxy(t, nil, "-c", path)
	p.admin = "http://127.0.0.1:" + ap
	p.waitReady()

	for i := range 5 {
		if code, body := get("http://127.0.0.1:" + lp + "/"); code != 200 || body != "static-backend" {
			t.Fatalf("request %d through the tcp_proxy listener: %d %q", i, code, body)
		}
	}
	for i := range 5 {
		if code, body := get("http://127.0.0.1:" + hp + "/x"); code != 200 || body != "static-backend" {
			t.Fatalf("request %d through the HCM listener: %d %q", i, code, body)
		}
	}
	if code, body := get("http://127.0.0.1:" + hp + "/direct"); code != 201 || body != "direct" {
		t.Errorf("the inline route's direct response: %d %q", code, body)
	}
	if n := be.hits.Load(); n != 10 {
		t.Errorf("the backend saw %d requests, want 10", n)
	}

	code, dump := get(p.admin + "/config_dump")
	dump = compact(t, dump)
	if code != 200 || !strings.Contains(dump, `"static_listeners":[{"listener":{"@type":"type.googleapis.com/envoy.config.listener.v3.Listener","name":"app-http"`) ||
		!strings.Contains(dump, `{"listener":{"@type":"type.googleapis.com/envoy.config.listener.v3.Listener","name":"app-tcp"`) ||
		!strings.Contains(dump, `"static_clusters":[{"cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"backend"`) ||
		!strings.Contains(dump, "BootstrapConfigDump") {
		t.Errorf("/config_dump: %d, want the static listeners, the static cluster and the bootstrap:\n%s", code, dump)
	}
	code, clusters := get(p.admin + "/clusters")
	if code != 200 || !strings.Contains(clusters, "backend::"+be.addr+"::health_flags::healthy") {
		t.Errorf("/clusters: %d, want backend's host %s healthy:\n%s", code, be.addr, clusters)
	}

	eventually(t, 5*time.Second, func() string {
		code, text := get(p.stats + "/stats/prometheus")
		if code != 200 {
			return "stats: " + text
		}
		parser := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
		if err != nil {
			return "stats do not parse: " + err.Error()
		}
		if v := value(fams, "skein_proxy_downstream_cx_total", "listener", "app-http"); v != 6 {
			return "downstream_cx_total{listener=app-http} is " + model.SampleValue(v).String() + ", want 6"
		}
		if v := value(fams, "skein_proxy_downstream_cx_total", "listener", "app-tcp"); v != 5 {
			return "downstream_cx_total{listener=app-tcp} is " + model.SampleValue(v).String() + ", want 5"
		}
		return ""
	})

	// /quitquitquit exits as SIGTERM does.
	resp, err := http.Post(p.admin+"/quitquitquit", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("exit after /quitquitquit: %v", p.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after /quitquitquit")
	}
}

// value is the value of the series of family name whose label has that
// value; -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name, label, want string) float64 {
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == want {
				switch {
				case m.Counter != nil:
					return m.GetCounter().GetValue()
				case m.Gauge != nil:
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// compact removes the white space of a JSON document (protojson's varies
// on purpose).
func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return b.String()
}

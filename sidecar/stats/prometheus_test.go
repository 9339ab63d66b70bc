package stats

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestPrometheusEscapesAndGzips: label values that need escaping survive
// Prometheus' own parser, the HELP and TYPE lines are there, and a scraper
// that accepts gzip (Prometheus does) gets the same families gzipped.
func TestPrometheusEscapesAndGzips(t *testing.T) {
	s := New()
	odd := "we\"ird\\name\nwith a line feed"
	s.Cluster(odd).RequestDone(200, 40*time.Millisecond, 1, 1)
	base := serve(t, s.Handler())

	for _, gz := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodGet, base+PrometheusPath, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		} else {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != gz {
			t.Fatalf("gzip asked %v, Content-Encoding %q", gz, resp.Header.Get("Content-Encoding"))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Errorf("Content-Type %q, want Prometheus' text format 0.0.4", ct)
		}
		body := resp.Body
		if gz {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		parser := expfmt.NewTextParser(model.LegacyValidation)
		mf, err := parser.TextToMetricFamilies(body)
		if err != nil {
			t.Fatalf("gzip %v: parse: %v", gz, err)
		}
		m := find(mf, "skein_proxy_requests_total", map[string]string{"cluster": odd, "code_class": "2xx"})
		if m == nil || value(m) != 1 {
			t.Errorf("gzip %v: requests_total of the oddly named cluster: %v, want 1", gz, m)
		}
		h := find(mf, "skein_proxy_request_duration_seconds", map[string]string{"cluster": odd}).GetHistogram()
		if h.GetSampleCount() != 1 || h.GetSampleSum() != .04 {
			t.Errorf("gzip %v: duration count %d sum %v, want 1 and 0.04", gz, h.GetSampleCount(), h.GetSampleSum())
		}
		if f := mf["skein_proxy_upstream_cx_total"]; f.GetHelp() == "" || f.GetType().String() != "COUNTER" {
			t.Errorf("gzip %v: upstream_cx_total help %q type %v", gz, f.GetHelp(), f.GetType())
		}
	}
}

// TestContentNegotiation: a scraper that prefers OpenMetrics or protobuf,
// as Prometheus does when told to, gets that format, and one that names
// neither gets the text format.
func TestContentNegotiation(t *testing.T) {
	s := New()
	s.Cluster("a").RequestDone(200, time.Millisecond, 1, 1)
	base := serve(t, s.Handler())
	cases := []struct {
		name string
		// accept is the scrape's Accept header; want the Content-Type's
		// prefix, and body a line the answer holds (text formats only).
		accept, want, body string
	}{
		{"no Accept", "", "text/plain; version=0.0.4", "skein_proxy_requests_total{cluster=\"a\",code_class=\"2xx\"} 1\n"},
		{"OpenMetrics", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
			"application/openmetrics-text; version=1.0.0", "# TYPE skein_proxy_requests counter\n"},
		{"protobuf", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
			"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, base+MetricsPath, nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.want) {
				t.Errorf("Content-Type %q, want %q", ct, tc.want)
			}
			if tc.body == "" {
				return
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.body) {
				t.Errorf("answer lacks %q", tc.body)
			}
		})
	}
}

package stats

import (
	"compress/gzip"
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

func TestAcceptsGzip(t *testing.T) {
	for in, want := range map[string]bool{
		"":                       false,
		"gzip":                   true,
		"deflate, gzip;q=1.0, *": true,
		"gzip;q=0":               false,
		"identity":               false,
		"x-gzip":                 false,
	} {
		if got := acceptsGzip(in); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", in, got, want)
		}
	}
}

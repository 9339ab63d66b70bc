package stats

import (
	"math"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

func TestWriteText(t *testing.T) {
	s := New()
	c := s.Cluster("outbound|80||a")
	for range 10 {
		c.RequestDone(200, 3*time.Millisecond, 150000, 0)
	}
	s.Cluster("outbound|80||b")
	var b strings.Builder
	err := WriteText(&b, s.Gatherer(), func(series string) bool { return !strings.Contains(series, `"outbound|80||b"`) })
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"skein_proxy_requests_total{cluster=\"outbound|80||a\",code_class=\"2xx\"}: 10\n",
		"skein_proxy_requests_total{cluster=\"outbound|80||a\",code_class=\"5xx\"}: 0\n",
		"skein_proxy_upstream_bytes_received_total{cluster=\"outbound|80||a\"}: 1500000\n",
		// 10 requests of 3ms, all in the bucket (2.5ms, 5ms].
		"skein_proxy_request_duration_seconds{cluster=\"outbound|80||a\"}: count=10 sum=0.03 p50=0.00375 p90=0.00475 p99=0.004975\n",
		"skein_proxy_config_updates_total{result=\"accepted\",type=\"cds\"}: 0\n",
		"go_gc_duration_seconds: count=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "||b") {
		t.Error("the filter kept a series of cluster b")
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.Contains(line, ": ") {
			t.Errorf("line %q is not `name: value`", line)
		}
	}
}

func TestBucketQuantile(t *testing.T) {
	hist := func(bounds []float64, cum []uint64) *dto.Histogram {
		h := &dto.Histogram{SampleCount: proto.Uint64(cum[len(cum)-1])}
		for i := range bounds {
			h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(bounds[i]), CumulativeCount: proto.Uint64(cum[i])})
		}
		return h
	}
	cases := []struct {
		name string
		// q is asked of a histogram of bounds and cumulative counts; want is the estimate.
		q      float64
		bounds []float64
		cum    []uint64
		want   float64
	}{
		{"first bucket interpolates from 0", .5, []float64{1, 2}, []uint64{10, 10}, .5},
		{"middle bucket", .75, []float64{1, 2, 4}, []uint64{5, 10, 10}, 1.5},
		{"empty buckets are skipped", .9, []float64{1, 2, 4}, []uint64{0, 0, 10}, 3.8},
		{"above the last bound is the last bound", .99, []float64{1, 2, math.Inf(1)}, []uint64{1, 2, 10}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := bucketQuantile(tc.q, hist(tc.bounds, tc.cum)); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

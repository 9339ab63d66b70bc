// Package stats holds skein-proxy's metrics: counters per cluster and per
// listener that the proxy resolves when it applies a config, so that a
// request or a connection only touches atomics; and the handler of the
// metrics port (15090), which Prometheus' Go client serves.
//
// Every series is labelled by at most a cluster name, a listener name, a
// response code class or an xDS type, so what a scrape returns is bounded
// by the config, not by traffic:
//
//   - per cluster, 12 series: requests_total for each of the 6 code classes
//     (none, 1xx to 5xx), one request_duration_seconds histogram (17
//     buckets), upstream_cx_active, upstream_cx_total,
//     upstream_cx_connect_failures_total and upstream bytes received and
//     sent;
//   - per listener, 4 series: downstream_cx_active, downstream_cx_total and
//     downstream bytes received and sent;
//   - per xDS type (lds, rds, cds, eds, sds, other), 3 series:
//     config_updates_total accepted and rejected, and config_version_info;
//   - the Go runtime's (go_*) and the process's (process_*), from the Go
//     client's default collectors.
//
// Code classes are created at zero when a cluster is, as Prometheus advises
// for known label values, so that a ratio of 5xx to all requests is 0, not
// absent, before the first error.
//
// The counters are plain atomics, not the Go client's labelled metric
// vectors: a cluster's series are a few hundred bytes here against several
// kilobytes of metric objects there, which matters for a sidecar with a
// thousand clusters (docs/proxy.md, "Memory"). A collector turns them into
// the client's const metrics at each scrape (collect.go), and the client
// does the rest: exposition formats, content negotiation, gzip.
package stats

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// PrometheusPath is where the metrics port serves the proxy's metrics, as
// Istio's sidecar does; MetricsPath serves them too.
const (
	PrometheusPath = "/stats/prometheus"
	MetricsPath    = "/metrics"
)

// DurationBuckets are the upper bounds, in seconds, of the request
// duration histogram: 100µs to 30s in steps of about 2.5.
var DurationBuckets = []float64{
	.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30,
}

// durationBucketCount is len(DurationBuckets), for the arrays of Cluster.
const durationBucketCount = 17

// durationBounds are DurationBuckets as durations, for RequestDone.
var durationBounds = func() []time.Duration {
	if len(DurationBuckets) != durationBucketCount {
		panic("stats: durationBucketCount is not len(DurationBuckets)")
	}
	out := make([]time.Duration, len(DurationBuckets))
	for i, b := range DurationBuckets {
		out[i] = time.Duration(b * float64(time.Second))
	}
	return out
}()

// codeClasses are the values of the code_class label; a status code's
// class is its index (code/100), and 0 means the request ended without a
// response.
var codeClasses = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Stats is the proxy's metrics registry. Its handles are safe for
// concurrent use; Cluster, Listener and their Forget methods are meant for
// config time.
type Stats struct {
	reg *prometheus.Registry

	// updates counts config_updates_total by xDS type (xdsTypes' index)
	// and result (0 accepted, 1 rejected).
	updates [len(xdsTypes)][2]atomic.Uint64

	mu        sync.Mutex
	clusters  map[string]*Cluster
	listeners map[string]*Listener
	versions  map[string]string // by xDS type label
}

// New returns an empty registry with the Go runtime's and the process's
// collectors.
func New() *Stats {
	s := &Stats{
		reg:       prometheus.NewRegistry(),
		clusters:  map[string]*Cluster{},
		listeners: map[string]*Listener{},
		versions:  map[string]string{},
	}
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collector{s},
	)
	return s
}

// Gatherer is what a scrape reads: the admin port's /stats uses it.
func (s *Stats) Gatherer() prometheus.Gatherer { return s.reg }

// Handler serves the metrics port: PrometheusPath and MetricsPath, 404
// elsewhere.
func (s *Stats) Handler() http.Handler {
	metrics := PrometheusHandler(s.reg)
	mux := http.NewServeMux()
	mux.Handle("GET "+PrometheusPath, metrics)
	mux.Handle("GET "+MetricsPath, metrics)
	return mux
}

// PrometheusHandler answers a scrape of what g gathers in the format the
// scraper asks for: Prometheus' text format by default, OpenMetrics or
// protobuf when its Accept header prefers them, gzipped when it accepts
// gzip. A series that cannot be gathered is left out, not the scrape.
func PrometheusHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// Cluster is one cluster's metrics, resolved once. A nil *Cluster counts
// nothing, so a proxy without stats passes nil.
type Cluster struct {
	requests [len(codeClasses)]atomic.Uint64
	// buckets[i] counts the requests of duration in (bound i-1, bound i];
	// the last one those above every bound.
	buckets        [durationBucketCount + 1]atomic.Uint64
	durationSum    atomic.Int64 // nanoseconds
	cxActive       atomic.Int64
	cxTotal        atomic.Uint64
	connectFailure atomic.Uint64
	rx, tx         atomic.Uint64
}

// Cluster returns the named cluster's handle, creating it the first time
// (its series are scraped once it is used: see Cluster.used). Until ForgetCluster, the same name returns the same handle,
// so a cluster that a new config keeps keeps its counts.
func (s *Stats) Cluster(name string) *Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clusters[name]; ok {
		return c
	}
	c := new(Cluster)
	s.clusters[name] = c
	return c
}

// ForgetCluster removes the named cluster's series. Handles still held (by
// requests in flight on the old config) keep working but are no longer
// scraped; a later Cluster of the same name starts from zero.
func (s *Stats) ForgetCluster(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clusters, name)
}

// RequestDone counts a completed request: code is the response's status
// code (0 or anything outside 100-599 counts as "none": no response), d its
// duration, received and sent the bytes of the response and of the
// request. It does not allocate or lock.
func (c *Cluster) RequestDone(code int, d time.Duration, received, sent int64) {
	if c == nil {
		return
	}
	class := 0
	if code >= 100 && code < 600 {
		class = code / 100
	}
	c.requests[class].Add(1)
	i := 0
	for i < len(durationBounds) && d > durationBounds[i] {
		i++
	}
	c.buckets[i].Add(1)
	c.durationSum.Add(int64(d))
	c.Bytes(received, sent)
}

// Bytes adds bytes received from and sent to the cluster's hosts outside
// of RequestDone, as a TCP proxy does while a connection lasts. Negative
// counts are ignored.
func (c *Cluster) Bytes(received, sent int64) {
	if c == nil {
		return
	}
	if received > 0 {
		c.rx.Add(uint64(received))
	}
	if sent > 0 {
		c.tx.Add(uint64(sent))
	}
}

// ConnOpened counts a new connection to one of the cluster's hosts.
func (c *Cluster) ConnOpened() {
	if c == nil {
		return
	}
	c.cxTotal.Add(1)
	c.cxActive.Add(1)
}

// ConnClosed counts the end of a connection that ConnOpened counted.
func (c *Cluster) ConnClosed() {
	if c == nil {
		return
	}
	c.cxActive.Add(-1)
}

// ConnectFailed counts a connection to one of the cluster's hosts that
// could not be opened (refused, timed out, TLS handshake failed).
func (c *Cluster) ConnectFailed() {
	if c == nil {
		return
	}
	c.connectFailure.Add(1)
}

// Listener is one listener's metrics, resolved once. A nil *Listener
// counts nothing.
type Listener struct {
	cxActive atomic.Int64
	cxTotal  atomic.Uint64
	rx, tx   atomic.Uint64
}

// Listener returns the named listener's handle, creating its series the
// first time; the same name returns the same handle until ForgetListener.
func (s *Stats) Listener(name string) *Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.listeners[name]; ok {
		return l
	}
	l := new(Listener)
	s.listeners[name] = l
	return l
}

// ForgetListener removes the named listener's series.
func (s *Stats) ForgetListener(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, name)
}

// ConnAccepted counts a connection the listener accepted.
func (l *Listener) ConnAccepted() {
	if l == nil {
		return
	}
	l.cxTotal.Add(1)
	l.cxActive.Add(1)
}

// ConnClosed counts the end of a connection that ConnAccepted counted.
func (l *Listener) ConnClosed() {
	if l == nil {
		return
	}
	l.cxActive.Add(-1)
}

// Bytes adds bytes received from and sent to the listener's downstream
// peers. Negative counts are ignored.
func (l *Listener) Bytes(received, sent int64) {
	if l == nil {
		return
	}
	if received > 0 {
		l.rx.Add(uint64(received))
	}
	if sent > 0 {
		l.tx.Add(uint64(sent))
	}
}

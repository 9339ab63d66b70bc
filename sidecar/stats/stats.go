// Package stats holds skein-proxy's metrics: a Prometheus registry of its
// own, with handles per cluster and per listener that the proxy resolves
// when it applies a config, so that a request or a connection only touches
// atomics; and the handler of the metrics port (15090).
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
//   - the Go runtime's and the process's own collectors, a fixed set.
//
// Code classes are created at zero when a cluster is, as Prometheus advises
// for known label values, so that a ratio of 5xx to all requests is 0, not
// absent, before the first error.
package stats

import (
	"net/http"
	"sync"
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

// codeClasses are the values of the code_class label; a status code's
// class is its index (code/100), and 0 means the request ended without a
// response.
var codeClasses = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Stats is the proxy's metrics registry. Its handles are safe for
// concurrent use; Cluster, Listener and their Forget methods are meant for
// config time.
type Stats struct {
	reg *prometheus.Registry

	requests           *prometheus.CounterVec   // cluster, code_class
	duration           *prometheus.HistogramVec // cluster
	upstreamCxActive   *prometheus.GaugeVec     // cluster
	upstreamCxTotal    *prometheus.CounterVec   // cluster
	upstreamCxFailures *prometheus.CounterVec   // cluster
	upstreamRx         *prometheus.CounterVec   // cluster
	upstreamTx         *prometheus.CounterVec   // cluster

	downstreamCxActive *prometheus.GaugeVec   // listener
	downstreamCxTotal  *prometheus.CounterVec // listener
	downstreamRx       *prometheus.CounterVec // listener
	downstreamTx       *prometheus.CounterVec // listener

	configUpdates *prometheus.CounterVec // type, result
	configVersion *prometheus.GaugeVec   // type, version

	mu        sync.Mutex
	clusters  map[string]*Cluster
	listeners map[string]*Listener
	versions  map[string]string // by xDS type label
}

// New returns an empty registry with the Go runtime's and the process's
// collectors.
func New() *Stats {
	cluster := []string{"cluster"}
	listener := []string{"listener"}
	s := &Stats{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_proxy_requests_total",
			Help: "Requests to a cluster that completed, by the class of the response code (none: no response).",
		}, []string{"cluster", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "skein_proxy_request_duration_seconds",
			Help:    "Time from a request's first byte to its response's last byte, by cluster.",
			Buckets: DurationBuckets,
		}, cluster),
		upstreamCxActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "skein_proxy_upstream_cx_active",
			Help: "Open connections to a cluster's hosts.",
		}, cluster),
		upstreamCxTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_proxy_upstream_cx_total",
			Help: "Connections opened to a cluster's hosts.",
		}, cluster),
		upstreamCxFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_proxy_upstream_cx_connect_failures_total",
			Help: "Connections to a cluster's hosts that failed to open.",
		}, cluster),
		upstreamRx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_proxy_upstream_bytes_received_total",
			Help: "Bytes received from a cluster's hosts.",
		}, cluster),
		upstreamTx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_proxy_upstream_bytes_sent_total",
			Help: "Bytes sent to a cluster's hosts.",
		}, cluster),
		downstreamCxActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "skein_proxy_downstream_cx_active",
			Help: "Open connections accepted by a listener.",
		}, listener),
		downstreamCxTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_proxy_downstream_cx_total",
			Help: "Connections accepted by a listener.",
		}, listener),
		downstreamRx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_proxy_downstream_bytes_received_total",
			Help: "Bytes received on a listener's connections.",
		}, listener),
		downstreamTx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_proxy_downstream_bytes_sent_total",
			Help: "Bytes sent on a listener's connections.",
		}, listener),
		configUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_proxy_config_updates_total",
			Help: "xDS updates by type (lds, rds, cds, eds, sds, other) and result (accepted, rejected).",
		}, []string{"type", "result"}),
		configVersion: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "skein_proxy_config_version_info",
			Help: "The version of the last accepted xDS update of each type; always 1.",
		}, []string{"type", "version"}),
		clusters:  map[string]*Cluster{},
		listeners: map[string]*Listener{},
		versions:  map[string]string{},
	}
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.requests, s.duration, s.upstreamCxActive, s.upstreamCxTotal, s.upstreamCxFailures,
		s.upstreamRx, s.upstreamTx,
		s.downstreamCxActive, s.downstreamCxTotal, s.downstreamRx, s.downstreamTx,
		s.configUpdates, s.configVersion,
	)
	for _, t := range xdsTypes {
		for _, r := range []string{resultAccepted, resultRejected} {
			s.configUpdates.WithLabelValues(t, r)
		}
	}
	return s
}

// Gatherer is what a scrape reads: the admin port's /stats uses it.
func (s *Stats) Gatherer() prometheus.Gatherer { return s.reg }

// Handler serves the metrics port: PrometheusPath and MetricsPath in
// Prometheus' text format (or OpenMetrics or protobuf when asked), 404
// elsewhere.
func (s *Stats) Handler() http.Handler {
	metrics := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	mux := http.NewServeMux()
	mux.Handle("GET "+PrometheusPath, metrics)
	mux.Handle("GET "+MetricsPath, metrics)
	return mux
}

// Cluster is one cluster's metrics, resolved once. A nil *Cluster counts
// nothing, so a proxy without stats passes nil.
type Cluster struct {
	requests       [len(codeClasses)]prometheus.Counter
	duration       prometheus.Observer
	cxActive       prometheus.Gauge
	cxTotal        prometheus.Counter
	connectFailure prometheus.Counter
	rx, tx         prometheus.Counter
}

// Cluster returns the named cluster's handle, creating its series (at zero)
// the first time. Until ForgetCluster, the same name returns the same handle,
// so a cluster that a new config keeps keeps its counts.
func (s *Stats) Cluster(name string) *Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clusters[name]; ok {
		return c
	}
	c := &Cluster{
		duration:       s.duration.WithLabelValues(name),
		cxActive:       s.upstreamCxActive.WithLabelValues(name),
		cxTotal:        s.upstreamCxTotal.WithLabelValues(name),
		connectFailure: s.upstreamCxFailures.WithLabelValues(name),
		rx:             s.upstreamRx.WithLabelValues(name),
		tx:             s.upstreamTx.WithLabelValues(name),
	}
	for i, class := range codeClasses {
		c.requests[i] = s.requests.WithLabelValues(name, class)
	}
	s.clusters[name] = c
	return c
}

// ForgetCluster removes the named cluster's series. Handles still held (by
// requests in flight on the old config) keep working but are no longer
// scraped; a later Cluster of the same name starts from zero.
func (s *Stats) ForgetCluster(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clusters[name]; !ok {
		return
	}
	delete(s.clusters, name)
	for _, class := range codeClasses {
		s.requests.DeleteLabelValues(name, class)
	}
	for _, v := range []*prometheus.MetricVec{
		s.duration.MetricVec, s.upstreamCxActive.MetricVec, s.upstreamCxTotal.MetricVec,
		s.upstreamCxFailures.MetricVec, s.upstreamRx.MetricVec, s.upstreamTx.MetricVec,
	} {
		v.DeleteLabelValues(name)
	}
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
	c.requests[class].Inc()
	c.duration.Observe(d.Seconds())
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
		c.rx.Add(float64(received))
	}
	if sent > 0 {
		c.tx.Add(float64(sent))
	}
}

// ConnOpened counts a new connection to one of the cluster's hosts.
func (c *Cluster) ConnOpened() {
	if c == nil {
		return
	}
	c.cxTotal.Inc()
	c.cxActive.Inc()
}

// ConnClosed counts the end of a connection that ConnOpened counted.
func (c *Cluster) ConnClosed() {
	if c == nil {
		return
	}
	c.cxActive.Dec()
}

// ConnectFailed counts a connection to one of the cluster's hosts that
// could not be opened (refused, timed out, TLS handshake failed).
func (c *Cluster) ConnectFailed() {
	if c == nil {
		return
	}
	c.connectFailure.Inc()
}

// Listener is one listener's metrics, resolved once. A nil *Listener
// counts nothing.
type Listener struct {
	cxActive prometheus.Gauge
	cxTotal  prometheus.Counter
	rx, tx   prometheus.Counter
}

// Listener returns the named listener's handle, creating its series the
// first time; the same name returns the same handle until ForgetListener.
func (s *Stats) Listener(name string) *Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.listeners[name]; ok {
		return l
	}
	l := &Listener{
		cxActive: s.downstreamCxActive.WithLabelValues(name),
		cxTotal:  s.downstreamCxTotal.WithLabelValues(name),
		rx:       s.downstreamRx.WithLabelValues(name),
		tx:       s.downstreamTx.WithLabelValues(name),
	}
	s.listeners[name] = l
	return l
}

// ForgetListener removes the named listener's series.
func (s *Stats) ForgetListener(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.listeners[name]; !ok {
		return
	}
	delete(s.listeners, name)
	for _, v := range []*prometheus.MetricVec{
		s.downstreamCxActive.MetricVec, s.downstreamCxTotal.MetricVec, s.downstreamRx.MetricVec, s.downstreamTx.MetricVec,
	} {
		v.DeleteLabelValues(name)
	}
}

// ConnAccepted counts a connection the listener accepted.
func (l *Listener) ConnAccepted() {
	if l == nil {
		return
	}
	l.cxTotal.Inc()
	l.cxActive.Inc()
}

// ConnClosed counts the end of a connection that ConnAccepted counted.
func (l *Listener) ConnClosed() {
	if l == nil {
		return
	}
	l.cxActive.Dec()
}

// Bytes adds bytes received from and sent to the listener's downstream
// peers. Negative counts are ignored.
func (l *Listener) Bytes(received, sent int64) {
	if l == nil {
		return
	}
	if received > 0 {
		l.rx.Add(float64(received))
	}
	if sent > 0 {
		l.tx.Add(float64(sent))
	}
}

package stats

import (
	"maps"

	"github.com/prometheus/client_golang/prometheus"
)

// The proxy's metric families. The registry orders families by name and a
// family's series by their label values, whatever the order of the labels
// here or of Collect.
var (
	requestsDesc = prometheus.NewDesc("skein_proxy_requests_total",
		"Requests to a cluster that completed, by the class of the response code (none: no response).",
		[]string{"cluster", "code_class"}, nil)
	durationDesc = prometheus.NewDesc("skein_proxy_request_duration_seconds",
		"Time from a request's first byte to its response's last byte, by cluster.",
		[]string{"cluster"}, nil)
	upstreamCxActiveDesc = prometheus.NewDesc("skein_proxy_upstream_cx_active",
		"Open connections to a cluster's hosts.",
		[]string{"cluster"}, nil)
	upstreamCxTotalDesc = prometheus.NewDesc("skein_proxy_upstream_cx_total",
		"Connections opened to a cluster's hosts.",
		[]string{"cluster"}, nil)
	upstreamCxFailuresDesc = prometheus.NewDesc("skein_proxy_upstream_cx_connect_failures_total",
		"Connections to a cluster's hosts that failed to open.",
		[]string{"cluster"}, nil)
	upstreamRxDesc = prometheus.NewDesc("skein_proxy_upstream_bytes_received_total",
		"Bytes received from a cluster's hosts.",
		[]string{"cluster"}, nil)
	upstreamTxDesc = prometheus.NewDesc("skein_proxy_upstream_bytes_sent_total",
		"Bytes sent to a cluster's hosts.",
		[]string{"cluster"}, nil)

	downstreamCxActiveDesc = prometheus.NewDesc("skein_proxy_downstream_cx_active",
		"Open connections accepted by a listener.",
		[]string{"listener"}, nil)
	downstreamCxTotalDesc = prometheus.NewDesc("skein_proxy_downstream_cx_total",
		"Connections accepted by a listener.",
		[]string{"listener"}, nil)
	downstreamRxDesc = prometheus.NewDesc("skein_proxy_downstream_bytes_received_total",
		"Bytes received on a listener's connections.",
		[]string{"listener"}, nil)
	downstreamTxDesc = prometheus.NewDesc("skein_proxy_downstream_bytes_sent_total",
		"Bytes sent on a listener's connections.",
		[]string{"listener"}, nil)

	configUpdatesDesc = prometheus.NewDesc("skein_proxy_config_updates_total",
		"xDS updates by type (lds, rds, cds, eds, sds, other) and result (accepted, rejected).",
		[]string{"type", "result"}, nil)
	configVersionDesc = prometheus.NewDesc("skein_proxy_config_version_info",
		"The version of the last accepted xDS update of each type; always 1.",
		[]string{"type", "version"}, nil)
)

// collector exports a Stats' counters to its registry: at each scrape it
// reads the atomics into the Go client's const metrics, which the scrape
// writes and then drops. Between scrapes nothing of the client's is held
// per series.
type collector struct{ s *Stats }

var _ prometheus.Collector = collector{}

// Describe sends every family's Desc, so the registry checks what Collect
// sends against them.
func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		requestsDesc, durationDesc, upstreamCxActiveDesc, upstreamCxTotalDesc,
		upstreamCxFailuresDesc, upstreamRxDesc, upstreamTxDesc,
		downstreamCxActiveDesc, downstreamCxTotalDesc, downstreamRxDesc, downstreamTxDesc,
		configUpdatesDesc, configVersionDesc,
	} {
		ch <- d
	}
}

// Collect sends every series of the clusters that were used (see
// Cluster.used) and of the listeners that are not forgotten, and of the
// xDS types. A cluster nothing went to yet has no series, as a label
// value of one of the Go client's vectors has none before its first use:
// the cost of a scrape follows the clusters in use, not the clusters
// configured (a sidecar sees every Service of the mesh, and 1,000 idle
// clusters made 12,000 zero series, 11 MB of garbage each scrape).
func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.mu.Lock()
	clusters := maps.Clone(s.clusters)
	listeners := maps.Clone(s.listeners)
	versions := maps.Clone(s.versions)
	s.mu.Unlock()

	for name, cl := range clusters {
		if !cl.used() {
			continue
		}
		for class, n := range codeClasses {
			ch <- constMetric(requestsDesc, prometheus.CounterValue, float64(cl.requests[class].Load()), name, n)
		}
		ch <- cl.durations(name)
		ch <- constMetric(upstreamCxActiveDesc, prometheus.GaugeValue, float64(cl.cxActive.Load()), name)
		ch <- constMetric(upstreamCxTotalDesc, prometheus.CounterValue, float64(cl.cxTotal.Load()), name)
		ch <- constMetric(upstreamCxFailuresDesc, prometheus.CounterValue, float64(cl.connectFailure.Load()), name)
		ch <- constMetric(upstreamRxDesc, prometheus.CounterValue, float64(cl.rx.Load()), name)
		ch <- constMetric(upstreamTxDesc, prometheus.CounterValue, float64(cl.tx.Load()), name)
	}
	for name, l := range listeners {
		ch <- constMetric(downstreamCxActiveDesc, prometheus.GaugeValue, float64(l.cxActive.Load()), name)
		ch <- constMetric(downstreamCxTotalDesc, prometheus.CounterValue, float64(l.cxTotal.Load()), name)
		ch <- constMetric(downstreamRxDesc, prometheus.CounterValue, float64(l.rx.Load()), name)
		ch <- constMetric(downstreamTxDesc, prometheus.CounterValue, float64(l.tx.Load()), name)
	}
	for t, typ := range xdsTypes {
		for r, result := range [...]string{resultAccepted, resultRejected} {
			ch <- constMetric(configUpdatesDesc, prometheus.CounterValue, float64(s.updates[t][r].Load()), typ, result)
		}
	}
	for typ, v := range versions {
		ch <- constMetric(configVersionDesc, prometheus.GaugeValue, 1, typ, v)
	}
}

// used reports whether anything was counted for c: a connection opened,
// failed or open, or a request completed. Once used, a cluster stays
// exported until ForgetCluster.
func (c *Cluster) used() bool {
	if c.cxTotal.Load() != 0 || c.connectFailure.Load() != 0 || c.cxActive.Load() != 0 {
		return true
	}
	for i := range c.requests {
		if c.requests[i].Load() != 0 {
			return true
		}
	}
	return false
}

// durations is the cluster's duration histogram. The count is the sum of
// the buckets read, so the +Inf bucket and the count always agree; the sum
// is read apart and may include a request more or less under load.
func (c *Cluster) durations(name string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(DurationBuckets))
	var cum uint64
	for i := range c.buckets {
		cum += c.buckets[i].Load()
		if i < len(DurationBuckets) {
			buckets[DurationBuckets[i]] = cum
		}
	}
	sum := float64(c.durationSum.Load()) / 1e9
	m, err := prometheus.NewConstHistogram(durationDesc, cum, sum, buckets, name)
	if err != nil {
		return prometheus.NewInvalidMetric(durationDesc, err)
	}
	return m
}

// constMetric is one counter or gauge series. A label value the client
// refuses (not UTF-8) makes an invalid metric, which the scrape leaves out
// and reports, rather than a panic in the registry's goroutine.
func constMetric(desc *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(desc, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(desc, err)
	}
	return m
}

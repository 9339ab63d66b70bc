package stats

import (
	"maps"
	"slices"
	"strings"
)

// kind is a metric family's Prometheus type.
type kind uint8

const (
	counter kind = iota
	gauge
	histogram
	summary
)

var kindNames = [...]string{"counter", "gauge", "histogram", "summary"}

// family is one metric family as a scrape sees it: a snapshot, built at
// scrape time and dropped after it.
type family struct {
	name, help string
	kind       kind
	series     []series
}

// series is one labelled series of a family: value for a counter or a
// gauge, dist for a histogram (bounds are upper bounds, counts cumulative)
// or a summary (bounds are quantiles, values theirs).
type series struct {
	labels []label // ordered by name
	value  float64
	dist   *distribution
}

type label struct{ name, value string }

type distribution struct {
	count  uint64
	sum    float64
	bounds []float64
	counts []uint64  // histogram: cumulative count of each bound
	values []float64 // summary: the value of each quantile
}

// gather snapshots every family, in name order, each family's series in
// the order of their label values (as Prometheus' Go client does), and
// leaves out families without series.
func (s *Stats) gather() []family {
	s.mu.Lock()
	clusterNames := slices.Sorted(maps.Keys(s.clusters))
	clusters := make([]*Cluster, len(clusterNames))
	for i, n := range clusterNames {
		clusters[i] = s.clusters[n]
	}
	listenerNames := slices.Sorted(maps.Keys(s.listeners))
	listeners := make([]*Listener, len(listenerNames))
	for i, n := range listenerNames {
		listeners[i] = s.listeners[n]
	}
	versions := maps.Clone(s.versions)
	s.mu.Unlock()

	fams := runtimeFamilies()
	fams = append(fams, processFamilies(s.start)...)
	fams = append(fams, clusterFamilies(clusterNames, clusters)...)
	fams = append(fams, listenerFamilies(listenerNames, listeners)...)
	fams = append(fams, s.xdsFamilies(versions)...)
	fams = slices.DeleteFunc(fams, func(f family) bool { return len(f.series) == 0 })
	slices.SortFunc(fams, func(a, b family) int { return strings.Compare(a.name, b.name) })
	return fams
}

// one is a family of one unlabelled series.
func one(name, help string, k kind, v float64) family {
	return family{name: name, help: help, kind: k, series: []series{{value: v}}}
}

func clusterFamilies(names []string, cs []*Cluster) []family {
	requests := family{name: "skein_proxy_requests_total", kind: counter,
		help: "Requests to a cluster that completed, by the class of the response code (none: no response)."}
	duration := family{name: "skein_proxy_request_duration_seconds", kind: histogram,
		help: "Time from a request's first byte to its response's last byte, by cluster."}
	cxActive := family{name: "skein_proxy_upstream_cx_active", kind: gauge,
		help: "Open connections to a cluster's hosts."}
	cxTotal := family{name: "skein_proxy_upstream_cx_total", kind: counter,
		help: "Connections opened to a cluster's hosts."}
	failures := family{name: "skein_proxy_upstream_cx_connect_failures_total", kind: counter,
		help: "Connections to a cluster's hosts that failed to open."}
	rx := family{name: "skein_proxy_upstream_bytes_received_total", kind: counter,
		help: "Bytes received from a cluster's hosts."}
	tx := family{name: "skein_proxy_upstream_bytes_sent_total", kind: counter,
		help: "Bytes sent to a cluster's hosts."}
	for i, c := range cs {
		l := []label{{"cluster", names[i]}}
		// Code classes in the order of their names: 1xx to 5xx, then none.
		for _, class := range [...]int{1, 2, 3, 4, 5, 0} {
			requests.series = append(requests.series, series{
				labels: []label{{"cluster", names[i]}, {"code_class", codeClasses[class]}},
				value:  float64(c.requests[class].Load()),
			})
		}
		duration.series = append(duration.series, series{labels: l, dist: c.durations()})
		cxActive.series = append(cxActive.series, series{labels: l, value: float64(c.cxActive.Load())})
		cxTotal.series = append(cxTotal.series, series{labels: l, value: float64(c.cxTotal.Load())})
		failures.series = append(failures.series, series{labels: l, value: float64(c.connectFailure.Load())})
		rx.series = append(rx.series, series{labels: l, value: float64(c.rx.Load())})
		tx.series = append(tx.series, series{labels: l, value: float64(c.tx.Load())})
	}
	return []family{requests, duration, cxActive, cxTotal, failures, rx, tx}
}

// durations snapshots the duration histogram. The count is the sum of the
// buckets read, so the +Inf bucket and the count always agree; the sum is
// read apart and may include a request more or less under load.
func (c *Cluster) durations() *distribution {
	d := &distribution{bounds: DurationBuckets, counts: make([]uint64, len(DurationBuckets))}
	var cum uint64
	for i := range c.buckets {
		cum += c.buckets[i].Load()
		if i < len(d.counts) {
			d.counts[i] = cum
		}
	}
	d.count = cum
	d.sum = float64(c.durationSum.Load()) / 1e9
	return d
}

func listenerFamilies(names []string, ls []*Listener) []family {
	cxActive := family{name: "skein_proxy_downstream_cx_active", kind: gauge,
		help: "Open connections accepted by a listener."}
	cxTotal := family{name: "skein_proxy_downstream_cx_total", kind: counter,
		help: "Connections accepted by a listener."}
	rx := family{name: "skein_proxy_downstream_bytes_received_total", kind: counter,
		help: "Bytes received on a listener's connections."}
	tx := family{name: "skein_proxy_downstream_bytes_sent_total", kind: counter,
		help: "Bytes sent on a listener's connections."}
	for i, l := range ls {
		lb := []label{{"listener", names[i]}}
		cxActive.series = append(cxActive.series, series{labels: lb, value: float64(l.cxActive.Load())})
		cxTotal.series = append(cxTotal.series, series{labels: lb, value: float64(l.cxTotal.Load())})
		rx.series = append(rx.series, series{labels: lb, value: float64(l.rx.Load())})
		tx.series = append(tx.series, series{labels: lb, value: float64(l.tx.Load())})
	}
	return []family{cxActive, cxTotal, rx, tx}
}

func (s *Stats) xdsFamilies(versions map[string]string) []family {
	updates := family{name: "skein_proxy_config_updates_total", kind: counter,
		help: "xDS updates by type (lds, rds, cds, eds, sds, other) and result (accepted, rejected)."}
	for r, result := range [...]string{resultAccepted, resultRejected} {
		for t, typ := range xdsTypes {
			updates.series = append(updates.series, series{
				labels: []label{{"result", result}, {"type", typ}},
				value:  float64(s.updates[t][r].Load()),
			})
		}
	}
	version := family{name: "skein_proxy_config_version_info", kind: gauge,
		help: "The version of the last accepted xDS update of each type; always 1."}
	for t, v := range versions {
		version.series = append(version.series, series{labels: []label{{"type", t}, {"version", v}}, value: 1})
	}
	for _, f := range []*family{&updates, &version} {
		slices.SortFunc(f.series, func(a, b series) int {
			for i := range a.labels {
				if c := strings.Compare(a.labels[i].value, b.labels[i].value); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	return []family{updates, version}
}

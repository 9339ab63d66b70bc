package server

import "github.com/prometheus/client_golang/prometheus"

// Reasons of skein_xds_rejected_streams_total.
const (
	reasonUnauthenticated  = "unauthenticated"
	reasonPermissionDenied = "permission_denied"
	reasonInvalidNode      = "invalid_node"
	reasonAuthUnavailable  = "authenticator_unavailable"
)

// metrics are the server's Prometheus metrics.
type metrics struct {
	connected       prometheus.Gauge
	pushes          *prometheus.CounterVec
	pushSeconds     prometheus.Histogram
	nacks           *prometheus.CounterVec
	rejectedStreams *prometheus.CounterVec
}

// newMetrics makes the metrics and registers them on reg, unless reg is nil.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skein_xds_connected_proxies",
			Help: "Proxies (distinct node IDs) with at least one open xDS stream.",
		}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_xds_pushes_total",
			Help: "xDS responses sent to proxies, by resource type.",
		}, []string{"type"}),
		pushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "skein_xds_push_seconds",
			Help:    "Time from the first change of a debounced burst to a proxy ACKing every type of the config it caused.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_xds_nacks_total",
			Help: "xDS responses a proxy rejected (NACKed), by resource type.",
		}, []string{"type"}),
		rejectedStreams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skein_xds_rejected_streams_total",
			Help: "xDS streams refused, by reason: unauthenticated, permission_denied, invalid_node, authenticator_unavailable.",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.pushes, m.pushSeconds, m.nacks, m.rejectedStreams)
	}
	return m
}

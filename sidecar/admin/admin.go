// Package admin serves skein-proxy's admin endpoints on localhost:15000, in
// the manner of Envoy's admin interface: readiness, the config as applied,
// clusters and their hosts, stats, the log level, and draining and quitting.
// They can change and stop the proxy, so they are only ever served on a
// loopback address (Listen refuses any other): reachable from the pod's own
// processes, skeinctl through a port-forward, and nothing else.
package admin

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skeinmesh/skein/sidecar/stats"
)

// DefaultAddr is where the admin endpoints listen.
const DefaultAddr = "127.0.0.1:15000"

// Source is the running proxy, as the admin endpoints see it.
type Source interface {
	// ConfigDump is the applied config as JSON (Envoy's ConfigDump).
	ConfigDump() ([]byte, error)
	// Clusters are the applied clusters and the state of their hosts.
	Clusters() []ClusterStatus
	// Ready is true once the listeners are up and the first config is
	// applied, and false again while draining.
	Ready() bool
	// DrainListeners stops accepting connections; those in flight
	// continue. It returns without waiting for them.
	DrainListeners()
	// Quit starts a graceful exit, as SIGTERM does. It is called after the
	// response is written, on a goroutine of its own.
	Quit()
}

// Handler answers the admin endpoints; GET / lists them. Read-only
// endpoints answer GET (and HEAD), the ones that change the proxy only
// POST, as Envoy's do; other methods get 405. Query parameters an
// endpoint does not know get 400 rather than being ignored.
type Handler struct {
	// Source is the running proxy; required.
	Source Source
	// Stats is what /stats shows; nil means /stats answers 404.
	Stats prometheus.Gatherer
	// Level is the proxy's log level, which /logging shows and changes;
	// nil means /logging answers 404.
	Level *slog.LevelVar

	once      sync.Once
	mux       *http.ServeMux
	index     string
	promStats http.Handler
}

// ServeHTTP routes r to its endpoint.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(h.init)
	h.mux.ServeHTTP(w, r)
}

// endpoint is one admin endpoint: its ServeMux pattern, the query
// parameters it takes, what the index says of it, and its handler.
type endpoint struct {
	pattern string
	params  []string
	help    string
	serve   http.HandlerFunc
}

func (h *Handler) endpoints() []endpoint {
	eps := []endpoint{
		{"GET /{$}", nil, "this list", h.serveIndex},
		{"GET /help", nil, "this list", h.serveIndex},
		{"GET /ready", nil, "200 LIVE once the listeners are up and the first config is applied, else 503", h.serveReady},
		{"GET /config_dump", nil, "the applied config: Envoy's ConfigDump as JSON", h.serveConfigDump},
		{"GET /clusters", []string{"format"}, "clusters and hosts as cluster::host::field::value lines, or ?format=json", h.serveClusters},
		{"POST /drain_listeners", nil, "stop accepting connections; those in flight continue", h.serveDrain},
		{"POST /quitquitquit", nil, "exit gracefully, as on SIGTERM", h.serveQuit},
	}
	if h.Stats != nil {
		eps = append(eps,
			endpoint{"GET /stats", []string{"format", "filter"}, "metrics as name: value lines, ?filter=<regexp> on the name, or ?format=prometheus", h.serveStats},
			endpoint{"GET " + stats.PrometheusPath, nil, "metrics in Prometheus' text format", h.servePrometheus},
		)
	}
	if h.Level != nil {
		eps = append(eps,
			endpoint{"GET /logging", []string{"level"}, "the log level", h.serveLevel},
			endpoint{"POST /logging", []string{"level"}, "?level=debug|info|warn|error changes the log level", h.serveSetLevel},
		)
	}
	return eps
}

func (h *Handler) init() {
	h.mux = http.NewServeMux()
	var index strings.Builder
	index.WriteString("admin commands are:\n")
	for _, ep := range h.endpoints() {
		h.mux.Handle(ep.pattern, onlyParams(ep.params, ep.serve))
		if ep.pattern == "GET /{$}" {
			continue
		}
		index.WriteString("  " + ep.pattern + ": " + ep.help + "\n")
	}
	h.index = index.String()
	if h.Stats != nil {
		h.promStats = stats.PrometheusHandler(h.Stats)
	}
}

// onlyParams answers 400 to a request with a query parameter not in
// params: an Envoy option the proxy does not have (say /config_dump's
// resource) would otherwise be ignored and the answer mistaken for it.
func onlyParams(params []string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var unknown []string
		for k := range q {
			if !slices.Contains(params, k) {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			http.Error(w, r.URL.Path+": unsupported parameter "+strings.Join(unknown, ", "), http.StatusBadRequest)
			return
		}
		next(w, r)
	}
}

func (h *Handler) serveIndex(w http.ResponseWriter, _ *http.Request) {
	text(w, http.StatusOK, h.index)
}

func (h *Handler) serveReady(w http.ResponseWriter, _ *http.Request) {
	if h.Source.Ready() {
		text(w, http.StatusOK, "LIVE\n")
		return
	}
	text(w, http.StatusServiceUnavailable, "NOT READY\n")
}

func (h *Handler) serveConfigDump(w http.ResponseWriter, _ *http.Request) {
	b, err := h.Source.ConfigDump()
	if err != nil {
		http.Error(w, "config_dump: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (h *Handler) serveClusters(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Query().Get("format") {
	case "", "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(clustersText(h.Source.Clusters()))
	case "json":
		b, err := clustersJSON(h.Source.Clusters())
		if err != nil {
			http.Error(w, "clusters: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	default:
		http.Error(w, "clusters: format is text or json", http.StatusBadRequest)
	}
}

func (h *Handler) serveStats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch q.Get("format") {
	case "", "text":
	case "prometheus":
		h.promStats.ServeHTTP(w, r)
		return
	default:
		http.Error(w, "stats: format is text or prometheus", http.StatusBadRequest)
		return
	}
	var keep func(string) bool
	if f := q.Get("filter"); f != "" {
		re, err := regexp.Compile(f)
		if err != nil {
			http.Error(w, "stats: filter: "+err.Error(), http.StatusBadRequest)
			return
		}
		keep = re.MatchString
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := stats.WriteText(w, h.Stats, keep); err != nil {
		// The status is sent; say so where a reader will see it.
		_, _ = w.Write([]byte("error: " + err.Error() + "\n"))
	}
}

func (h *Handler) servePrometheus(w http.ResponseWriter, r *http.Request) {
	h.promStats.ServeHTTP(w, r)
}

// levels are the names /logging accepts, Envoy's "warning" among them.
var levels = map[string]slog.Level{
	"debug":   slog.LevelDebug,
	"info":    slog.LevelInfo,
	"warn":    slog.LevelWarn,
	"warning": slog.LevelWarn,
	"error":   slog.LevelError,
}

func (h *Handler) serveLevel(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.URL.Query().Has("level") {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "logging: changing the level takes POST", http.StatusMethodNotAllowed)
		return
	}
	text(w, http.StatusOK, "level: "+strings.ToLower(h.Level.Level().String())+"\n")
}

func (h *Handler) serveSetLevel(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("level")
	level, ok := levels[strings.ToLower(name)]
	if !ok {
		http.Error(w, "logging: level "+strconv.Quote(name)+" is not debug, info, warn or error", http.StatusBadRequest)
		return
	}
	h.Level.Set(level)
	h.serveLevel(w, r)
}

func (h *Handler) serveDrain(w http.ResponseWriter, _ *http.Request) {
	h.Source.DrainListeners()
	text(w, http.StatusOK, "OK\n")
}

func (h *Handler) serveQuit(w http.ResponseWriter, _ *http.Request) {
	text(w, http.StatusOK, "OK\n")
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	// Quit may well shut this server down, which waits for this handler.
	go h.Source.Quit()
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// Listen listens on addr, which must be a loopback address (127.0.0.1,
// ::1 or localhost) with a port; any other host, the empty one included,
// is refused.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("admin address %q: the admin endpoints are served on a loopback address only", addr)
	}
	return net.Listen("tcp", addr)
}

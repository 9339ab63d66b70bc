package proxy

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skeinmesh/skein/sidecar/listener"
	"github.com/skeinmesh/skein/sidecar/router"
	"github.com/skeinmesh/skein/sidecar/stats"
	"github.com/skeinmesh/skein/sidecar/upstream"
	"github.com/skeinmesh/skein/sidecar/xdsclient"
)

// Config configures a Proxy.
type Config struct {
	// Listeners and Clusters are the bootstrap's static_resources; nil
	// means none. They are never replaced, and xDS may not reuse their
	// names.
	Listeners []*listenerv3.Listener
	Clusters  []*clusterv3.Cluster
	// ADS says the config also comes from xDS: Ready then waits for the
	// first CDS and LDS updates. False: static resources only.
	ADS bool
	// Fallback, when not nil, starts the capture passthrough listeners
	// until the first LDS update (see the package doc). Nil: none.
	Fallback *Fallback
	// Stats is the metrics registry; nil means a new one (Stats returns it).
	Stats *stats.Stats
	// DetectTimeout is listener.Config's; 0 means its default (150 ms).
	DetectTimeout time.Duration
	// Logger receives the proxy's logs; nil means slog.Default().
	Logger *slog.Logger
	// OnReady, when not nil, is called with the new readiness whenever it
	// changes (the health port's SetReady).
	OnReady func(ready bool)
	// Quit is what admin's /quitquitquit calls: the assembly's graceful
	// exit. Nil: Quit does nothing.
	Quit func()
}

// Fallback is the capture passthrough an injected proxy serves until its
// first listeners arrive.
type Fallback struct {
	// OutboundPort is virtualOutbound's port (15001); InboundPort is
	// virtualInbound's (15006). Neither may be 0.
	OutboundPort, InboundPort uint16
}

// Proxy is the running proxy: clusters, listeners and route tables, and
// the config they were built from. Its methods are safe for concurrent
// use; Apply calls are serialised.
type Proxy struct {
	log     *slog.Logger
	stats   *stats.Stats
	onReady func(bool)
	quit    func()
	ads     bool

	clusters  *upstream.Manager
	listeners *listener.Manager
	routes    atomic.Pointer[map[string]*router.Table]
	// Metric handles by name, rebuilt when clusters or listeners change,
	// so a connection only does a map read.
	clusterStats  atomic.Pointer[map[string]*stats.Cluster]
	listenerStats atomic.Pointer[map[string]*stats.Listener]
	// conns holds what a TCP proxy's dial took (a host's in-flight count,
	// the cluster's connection gauge) until its connection ends, keyed by
	// the connection's *listener.ConnInfo.
	conns sync.Map

	mu        sync.Mutex
	bootstrap *bootstrapv3.Bootstrap // for the dump; nil when none
	static    config                 // the bootstrap's, never replaced
	fallback  *config                // capture passthrough until the first LDS; nil after
	dynamic   config                 // from xDS
	started   bool                   // static listeners bound
	cdsDone   bool                   // first CDS applied
	ldsDone   bool                   // first LDS applied
	// cdsAnswered and ldsAnswered: the first CDS or LDS update was refused
	// (see refusedFirst); readiness counts it as answered.
	cdsAnswered, ldsAnswered bool
	rdsNames                 map[string]bool   // route configurations the listeners use
	draining                 bool              // Drain or DrainListeners was called
	ready                    bool              // last readiness reported
	versions                 map[string]string // xDS version of each type's applied set
}

// config is one source's resources by name, as received, for the dump
// and to merge with the other sources.
type config struct {
	listeners map[string]*resource
	clusters  map[string]*resource
	endpoints map[string]*resource
	routes    map[string]*resource
}

// resource is one applied resource: its proto, its Any as received (for
// the dump; nil for static resources, whose dump makes it from msg), and
// when and in which xDS version it was last changed.
type resource struct {
	msg     any
	any     *anypb.Any
	updated time.Time
	version string // "" for static resources and unversioned Apply
}

var _ xdsclient.VersionedHandler = (*Proxy)(nil)

// New builds a proxy with no config; Start applies the static resources
// and binds their listeners.
func New(cfg Config) (*Proxy, error) {
	p := &Proxy{
		log:      cfg.Logger,
		stats:    cfg.Stats,
		onReady:  cfg.OnReady,
		quit:     cfg.Quit,
		ads:      cfg.ADS,
		clusters: upstream.NewManager(),
		versions: map[string]string{},
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.stats == nil {
		p.stats = stats.New()
	}
	p.routes.Store(&map[string]*router.Table{})
	p.clusterStats.Store(&map[string]*stats.Cluster{})
	p.listenerStats.Store(&map[string]*stats.Listener{})

	d := dialer{p}
	onError := func(err error) { p.log.Debug("connection dropped", "err", err) }
	filters := map[string]listener.FilterFactory{
		listener.TCPProxyType: p.counting(listener.NewTCPProxyFactory(d, onError)),
	}
	p.addHTTPFilters(filters)
	// Connections of HCM chains that are not HTTP: the passthrough, counted
	// as every other TCP proxy is.
	passthrough := &listener.TCPProxy{
		Clusters: []string{PassthroughCluster}, Weights: []uint32{1},
		IdleTimeout: listener.DefaultTCPIdleTimeout, MaxConnectAttempts: 1,
		Dialer: d, OnError: onError,
	}
	lm, err := listener.NewManager(listener.Config{
		Dialer:        d,
		Filters:       filters,
		DetectTimeout: cfg.DetectTimeout,
		Fallback:      counted{p, passthrough},
		OnError:       onError,
	})
	if err != nil {
		return nil, err
	}
	p.listeners = lm

	var err2 error
	if p.static, err2 = staticConfig(cfg.Listeners, cfg.Clusters); err2 != nil {
		return nil, err2
	}
	if f := cfg.Fallback; f != nil {
		if f.OutboundPort == 0 || f.InboundPort == 0 {
			return nil, errors.New("fallback: outbound and inbound ports are required")
		}
		fb, err := fallbackConfig(*f)
		if err != nil {
			return nil, err
		}
		p.fallback = &fb
	}
	return p, nil
}

// Start applies the static resources (and the fallback), binding their
// listeners. It fails, changing nothing, when one does not compile or
// bind.
func (p *Proxy) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.updateClusters(p.dynamic.clusters, p.fallback); err != nil {
		return err
	}
	if err := p.updateListeners(p.dynamic.listeners, p.fallback); err != nil {
		return err
	}
	p.started = true
	p.rdsNames = rdsNames(p.static.listeners)
	p.readinessChanged()
	return nil
}

// Stats is the proxy's metrics registry.
func (p *Proxy) Stats() *stats.Stats { return p.stats }

// ClusterManager is the proxy's cluster manager.
func (p *Proxy) ClusterManager() *upstream.Manager { return p.clusters }

// Table returns the route table RDS delivered under name, nil when there
// is none: the HTTP connection managers read it once per request.
func (p *Proxy) Table(name string) *router.Table { return (*p.routes.Load())[name] }

// ListenerAddr is the address the named listener is bound to, or nil.
func (p *Proxy) ListenerAddr(name string) string {
	if a := p.listeners.Addr(name); a != nil {
		return a.String()
	}
	return ""
}

// Ready reports whether the listeners are bound and, with ADS, the first
// CDS and LDS updates applied (or refused: see refusedFirst) and the route
// configurations those listeners name arrived; false from a drain on.
func (p *Proxy) Ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

// readinessChanged recomputes readiness and reports a change. p.mu is held.
func (p *Proxy) readinessChanged() {
	ready := p.started && !p.draining && (!p.ads || ((p.cdsDone || p.cdsAnswered) && (p.ldsDone || p.ldsAnswered)))
	if ready && !p.ready {
		// The first time only: a route configuration that is missing
		// later answers 404 as in Envoy, it does not unready the pod.
		routes := *p.routes.Load()
		for name := range p.rdsNames {
			if routes[name] == nil {
				ready = false
			}
		}
	}
	if ready == p.ready {
		return
	}
	p.ready = ready
	p.log.Info("readiness changed", "ready", ready)
	if p.onReady != nil {
		p.onReady(ready)
	}
}

// DrainListeners stops accepting connections (admin's /drain_listeners);
// those in flight go on. The proxy is not ready from then on.
func (p *Proxy) DrainListeners() {
	p.mu.Lock()
	p.draining = true
	p.readinessChanged()
	p.mu.Unlock()
	p.listeners.StopAccepting()
}

// Drain is the graceful exit: not ready, stop accepting, wait for the
// connections in flight until ctx ends (then close the rest and return
// ctx's error), then drain the clusters.
func (p *Proxy) Drain(ctx context.Context) error {
	p.mu.Lock()
	p.draining = true
	p.readinessChanged()
	p.mu.Unlock()
	err := p.listeners.Drain(ctx)
	p.clusters.Close()
	return err
}

// Quit starts the assembly's graceful exit, as SIGTERM does.
func (p *Proxy) Quit() {
	if p.quit != nil {
		p.quit()
	}
}

// Close closes every listener and connection at once.
func (p *Proxy) Close() {
	_ = p.listeners.Close()
	p.clusters.Close()
}

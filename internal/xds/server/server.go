package server

import (
	"context"
	"runtime"
	"sync"
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	xdsserver "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/skeinmesh/skein/internal/mesh"
)

// Generator makes one proxy's config from the current state of the mesh.
// It is called concurrently for different proxies, and never concurrently
// for the same one. The Server keeps the returned resources: they must not
// be modified afterwards.
type Generator func(ctx context.Context, p mesh.Proxy) (Config, error)

// Options configure a Server.
type Options struct {
	// Generate makes a proxy's config. Required.
	Generate Generator
	// Authenticator verifies the token each stream presents. nil means no
	// authentication, for tests and benchmarks only: New logs a warning.
	Authenticator Authenticator
	// Quiet is how long Trigger waits for more changes before
	// regenerating; zero means 100ms.
	Quiet time.Duration
	// MaxDelay bounds how long a stream of Triggers can postpone
	// regeneration; zero means 1s.
	MaxDelay time.Duration
	// Logger logs; the zero value logs nothing.
	Logger logr.Logger
	// Registry registers the server's metrics; nil registers none.
	Registry prometheus.Registerer
}

// Server serves per-proxy xDS snapshots. Make it with New, Register it on a
// gRPC server and run Start.
type Server struct {
	generate Generator
	auth     Authenticator
	log      logr.Logger
	metrics  *metrics
	cache    *caches
	xds      xdsserver.Server
	debounce *debouncer
	// slots bounds how many generations run at once.
	slots chan struct{}
	// ctx ends the xDS streams when Start's context ends.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards proxies, the proxies' stream counts, and streams.
	mu      sync.Mutex
	proxies map[string]*proxyState
	streams map[streamKey]*streamState

	index sourceIndex
	// hashes versions resources, remembering shared ones across proxies.
	hashes *hasher

	changes chan struct{}
}

// New returns a server for o.
func New(o Options) *Server {
	log := o.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	if o.Quiet <= 0 {
		o.Quiet = 100 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = time.Second
	}
	if o.Authenticator == nil {
		log.Info("WARNING: xDS server without authentication: any client can read any proxy's config; for tests and benchmarks only")
	}
	s := &Server{
		generate: o.Generate,
		auth:     o.Authenticator,
		log:      log,
		metrics:  newMetrics(o.Registry),
		debounce: newDebouncer(o.Quiet, o.MaxDelay),
		slots:    make(chan struct{}, runtime.GOMAXPROCS(0)),
		proxies:  map[string]*proxyState{},
		streams:  map[streamKey]*streamState{},
		index:    sourceIndex{refs: map[ObjectKey]map[*proxyState]int64{}},
		changes:  make(chan struct{}, 1),
		hashes:   newHasher(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cache = newCaches(cpLogger{log.WithName("cache")}, s.nackedVersion)
	s.xds = xdsserver.NewServer(s.ctx, s.cache.mux, callbacks{s},
		// CDS before EDS, LDS before RDS on an ADS stream, as Envoy expects.
		sotw.WithOrderedADS(),
		sotw.WithLogger(cpLogger{log.WithName("xds")}))
	return s
}

// Register registers the aggregated discovery service (state of the world
// and delta) and the listener, route, cluster and endpoint discovery
// services on g.
func (s *Server) Register(g *grpc.Server) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, s.xds)
	routeservice.RegisterRouteDiscoveryServiceServer(g, s.xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, s.xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, s.xds)
}

// Trigger reports that something the Generator reads changed: every
// connected proxy's config is regenerated once the changes settle (Quiet
// without a Trigger, or MaxDelay after the first). It never blocks.
func (s *Server) Trigger() { s.debounce.trigger() }

// Start runs the debouncer until ctx ends, then ends the open xDS streams;
// the Server serves no stream after that. It is a controller-runtime
// Runnable. Streams are served before Start is called, and Triggers wait
// for it.
func (s *Server) Start(ctx context.Context) error {
	defer s.cancel()
	s.debounce.run(ctx, func(first time.Time) { s.regenerateAll(ctx, first) })
	return nil
}

// NeedLeaderElection reports false: every operator replica serves xDS, so
// controller-runtime runs Start on replicas that do not lead too.
func (s *Server) NeedLeaderElection() bool { return false }

// Changes fires, coalesced and without blocking the server, when a proxy
// connected or disconnected, was published a new version, or ACKed or
// NACKed one: a reader then calls Status for the objects it reports on.
func (s *Server) Changes() <-chan struct{} { return s.changes }

func (s *Server) notify() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// regenerateAll regenerates every connected proxy, at most GOMAXPROCS at a
// time. changed is when the change that caused it happened.
func (s *Server) regenerateAll(ctx context.Context, changed time.Time) {
	s.mu.Lock()
	all := make([]*proxyState, 0, len(s.proxies))
	for _, ps := range s.proxies {
		all = append(all, ps)
	}
	s.mu.Unlock()
	s.log.V(1).Info("regenerating proxies", "count", len(all), "sinceChange", time.Since(changed))
	s.hashes.rotate()
	var wg sync.WaitGroup
	for _, ps := range all {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-s.slots }()
			s.update(ctx, ps, changed)
		})
	}
	wg.Wait()
}

// update generates ps's config and publishes it when it is consistent and
// differs from the published one. changed is when the change that caused
// it happened, zero for a proxy's first config.
func (s *Server) update(ctx context.Context, ps *proxyState, changed time.Time) {
	ps.gen.Lock()
	defer ps.gen.Unlock()
	log := s.log.WithValues("proxy", ps.proxy.ID)
	cfg, err := s.generate(ctx, ps.proxy)
	if err != nil {
		log.Error(err, "Generating the proxy's config failed; it keeps its previous config")
		return
	}
	snap, versions, err := buildSnapshot(s.hashes, cfg)
	if err != nil {
		log.Error(err, "Inconsistent config not published; the proxy keeps its previous config")
		return
	}

	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return
	}
	sources := sortedSources(cfg.Sources)
	sourcesChanged := s.index.set(ps, ps.sources, sources)
	ps.sources = sources
	if sameVersions(ps.versions, versions) {
		if sourcesChanged {
			s.notify()
		}
		return
	}
	ps.versions = versions
	if !changed.IsZero() && ps.pushStart.IsZero() {
		ps.pushStart = changed
	}
	if ps.recomputeLocked(); ps.synced {
		// Only types the proxy does not subscribe to changed: nothing to wait for.
		ps.pushStart = time.Time{}
	}
	if err := s.cache.SetSnapshot(ctx, ps.proxy.ID, snap); err != nil {
		log.Error(err, "Publishing the proxy's snapshot failed")
	}
	log.V(1).Info("published config", "versions", versions)
	s.notify()
}

func sameVersions(a, b map[string]string) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	for t, v := range a {
		if b[t] != v {
			return false
		}
	}
	return true
}

// nackedVersion returns the version of typeURL that the proxy node last
// NACKed, "" when it NACKed none.
func (s *Server) nackedVersion(node, typeURL string) string {
	s.mu.Lock()
	ps := s.proxies[node]
	s.mu.Unlock()
	if ps == nil {
		return ""
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ts := ps.types[typeURL]; ts != nil {
		return ts.nackVersion
	}
	return ""
}

// Package controlplane joins the operator's view of the cluster to the xDS
// server: it keeps the mesh model current, translates it for each proxy,
// and serves the result over gRPC.
package controlplane

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skeinmesh/skein/internal/mesh"
	"github.com/skeinmesh/skein/internal/meshconfig"
	"github.com/skeinmesh/skein/internal/xds/server"
	"github.com/skeinmesh/skein/internal/xds/translate"
)

// Options configure a ControlPlane.
type Options struct {
	// Reader reads the objects the model is built from: the manager's cache.
	Reader client.Reader
	// Settings are the mesh-wide settings in force.
	Settings *meshconfig.Store
	// Authenticator verifies proxies' tokens; nil turns authentication off
	// (benchmarks and local development only).
	Authenticator server.Authenticator
	// Logger logs; the zero value logs nothing.
	Logger logr.Logger
	// Registry registers the xDS server's metrics; nil registers none.
	Registry prometheus.Registerer
}

// ControlPlane keeps the model and serves it. Make it with New.
type ControlPlane struct {
	// Server is the xDS server.
	Server   *server.Server
	reader   client.Reader
	settings *meshconfig.Store
	log      logr.Logger

	// changes counts MeshChanged calls; a state is current while the
	// count it was loaded at is the count now.
	changes atomic.Uint64
	// mu serialises loading the model.
	mu    sync.Mutex
	state atomic.Pointer[state]
}

// state is one model and what was translated from it so far.
type state struct {
	model *mesh.Model
	// loadedAt is the change count before the model was read.
	loadedAt uint64
	// outbound holds *outboundEntry by namespace and kind of proxy: the
	// part of the config that every such proxy of a namespace shares,
	// translated once.
	outbound sync.Map
}

type outboundKey struct {
	namespace string
	proxyless bool
}

type outboundEntry struct {
	once sync.Once
	res  *translate.Resources
}

// New returns a control plane for o.
func New(o Options) *ControlPlane {
	c := &ControlPlane{reader: o.Reader, settings: o.Settings, log: o.Logger}
	c.Server = server.New(server.Options{
		Generate:      c.generate,
		Authenticator: o.Authenticator,
		Logger:        o.Logger,
		Registry:      o.Registry,
	})
	return c
}

// MeshChanged records that an object the model is built from changed and
// asks the server for a (debounced) push. It does not block.
func (c *ControlPlane) MeshChanged() {
	c.changes.Add(1)
	c.Server.Trigger()
}

// Serve listens on addr and serves xDS until ctx ends; see ServeListener.
func (c *ControlPlane) Serve(ctx context.Context, addr string, opts ...grpc.ServerOption) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for xDS on %s: %w", addr, err)
	}
	return c.ServeListener(ctx, lis, opts...)
}

// ServeListener serves xDS on lis until ctx ends, and runs the server's
// debouncer meanwhile. It closes lis.
func (c *ControlPlane) ServeListener(ctx context.Context, lis net.Listener, opts ...grpc.ServerOption) error {
	g := grpc.NewServer(opts...)
	c.Server.Register(g)
	errs := make(chan error, 2)
	go func() { errs <- c.Server.Start(ctx) }()
	go func() { errs <- g.Serve(lis) }()
	c.log.Info("Serving xDS", "address", lis.Addr().String())
	select {
	case <-ctx.Done():
		g.Stop() // streams are long-lived: a graceful stop would wait for every proxy to hang up
		return nil
	case err := <-errs:
		g.Stop()
		return err
	}
}

// generate makes proxy p's config from the current model.
func (c *ControlPlane) generate(ctx context.Context, p mesh.Proxy) (server.Config, error) {
	st, err := c.current(ctx)
	if err != nil {
		return server.Config{}, err
	}
	r := translate.ForProxyFrom(st.model, p, st.outboundFor(p.Namespace, p.Pod == ""))
	return server.Config{
		Resources: map[string][]types.Resource{
			resource.ListenerType: asResources(r.Listeners),
			resource.RouteType:    asResources(r.Routes),
			resource.ClusterType:  asResources(r.Clusters),
			resource.EndpointType: asResources(r.Endpoints),
		},
		Sources: r.Sources,
	}, nil
}

// current returns the state for the latest model, loading a new model
// first when something changed since the last one was read.
func (c *ControlPlane) current(ctx context.Context) (*state, error) {
	if st := c.state.Load(); st != nil && st.loadedAt == c.changes.Load() {
		return st, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Read before the model: a change during the load leaves this state
	// stale, and the next generation loads again.
	at := c.changes.Load()
	if st := c.state.Load(); st != nil && st.loadedAt == at {
		return st, nil // another proxy's generation loaded it meanwhile
	}
	m, err := mesh.Load(ctx, c.reader, c.settings.Current())
	if err != nil {
		return nil, fmt.Errorf("load the mesh model: %w", err)
	}
	st := &state{model: m, loadedAt: at}
	c.state.Store(st)
	return st, nil
}

// outboundFor returns the outbound config shared by the namespace's proxies
// of one kind, translating it on first use. Sidecars do not get the API
// listeners (and their route configurations) meant for proxyless gRPC
// clients: they would not use them, and at 1,000 proxies they are half the
// work of a push.
func (st *state) outboundFor(namespace string, proxyless bool) *translate.Resources {
	v, _ := st.outbound.LoadOrStore(outboundKey{namespace, proxyless}, &outboundEntry{})
	e := v.(*outboundEntry)
	e.once.Do(func() {
		e.res = translate.Outbound(st.model, namespace)
		if !proxyless {
			e.res = withoutAPIListeners(e.res)
		}
	})
	return e.res
}

// withoutAPIListeners returns r without its API listeners and the route
// configurations of the same names. r is not modified.
func withoutAPIListeners(r *translate.Resources) *translate.Resources {
	dropped := map[string]bool{}
	out := *r
	out.Listeners = nil
	for _, l := range r.Listeners {
		if l.GetApiListener() != nil {
			dropped[l.GetName()] = true
			continue
		}
		out.Listeners = append(out.Listeners, l)
	}
	if len(dropped) == 0 {
		return r
	}
	out.Routes = nil
	for _, rc := range r.Routes {
		if !dropped[rc.GetName()] {
			out.Routes = append(out.Routes, rc)
		}
	}
	return &out
}

func asResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}

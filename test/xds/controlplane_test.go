package xds_test

import (
	"context"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc"

	"github.com/skeinmesh/skein/internal/mesh"
	"github.com/skeinmesh/skein/internal/xds/server"
	"github.com/skeinmesh/skein/internal/xds/translate"
)

// controlPlane is Skein's xDS server on 127.0.0.1, without authentication,
// generating each proxy's config with the translator from the model the test
// sets last.
type controlPlane struct {
	addr   string
	server *server.Server
	model  atomic.Pointer[mesh.Model]
	log    *errorLog
}

// startControlPlane serves Skein's xDS server on 127.0.0.1:0 from model, with
// short debounce periods so that a model change reaches the client quickly.
func startControlPlane(t *testing.T, model *mesh.Model) *controlPlane {
	t.Helper()
	cp := &controlPlane{log: &errorLog{t: t}}
	cp.model.Store(model)
	cp.server = server.New(server.Options{
		Generate: func(_ context.Context, p mesh.Proxy) (server.Config, error) {
			return generate(cp.model.Load(), p)
		},
		Quiet:    10 * time.Millisecond,
		MaxDelay: 50 * time.Millisecond,
		Logger:   cp.log.logger(),
	})
	g := grpc.NewServer()
	cp.server.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for the xDS server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cp.server.Start(ctx)
	}()
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(func() {
		cancel()
		<-done
		g.Stop()
	})
	cp.addr = lis.Addr().String()
	return cp
}

// generate is the operator's Generator: the translator's resources for p,
// keyed by type URL.
func generate(m *mesh.Model, p mesh.Proxy) (server.Config, error) {
	r := translate.ForProxy(m, p)
	res := map[string][]types.Resource{}
	for _, l := range r.Listeners {
		res[resourcev3.ListenerType] = append(res[resourcev3.ListenerType], l)
	}
	for _, rc := range r.Routes {
		res[resourcev3.RouteType] = append(res[resourcev3.RouteType], rc)
	}
	for _, c := range r.Clusters {
		res[resourcev3.ClusterType] = append(res[resourcev3.ClusterType], c)
	}
	for _, cla := range r.Endpoints {
		res[resourcev3.EndpointType] = append(res[resourcev3.EndpointType], cla)
	}
	return server.Config{Resources: res, Sources: r.Sources}, nil
}

// push replaces the model and tells the server that it changed.
func (cp *controlPlane) push(m *mesh.Model) {
	cp.model.Store(m)
	cp.server.Trigger()
}

// waitSynced waits until the one connected proxy has ACKed the snapshot made
// from generation gen of TrafficPolicy shop/name, as the server's status
// reports it. It fails at once when the proxy NACKs it, with grpc-go's
// message, or when the server logs an error (such as a config it refuses to
// publish).
func (cp *controlPlane) waitSynced(t *testing.T, name string, gen int64) {
	t.Helper()
	key := server.ObjectKey{Kind: "TrafficPolicy", Namespace: namespace, Name: name}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := cp.server.Status(key)
		switch {
		case c.Rejected > 0:
			t.Fatalf("grpc-go NACKed the config of TrafficPolicy %s/%s generation %d: %s", namespace, name, gen, c.NACKMessage)
		case cp.log.first() != "":
			t.Fatalf("the xDS server logged an error: %s", cp.log.first())
		case c.Total == 1 && c.Synced == 1 && c.Generation == gen:
			return
		case time.Now().After(deadline):
			t.Fatalf("TrafficPolicy %s/%s generation %d not synced after 10s: %+v%s", namespace, name, gen, c, cp.log.unanswered())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// errorLog is the server's logger: every line, V(1) included, goes to the
// test's log; it keeps the first error, and the requests that
// go-control-plane's cache declined to answer.
type errorLog struct {
	t        *testing.T
	mu       sync.Mutex
	err      string
	declined map[string]bool
}

func (l *errorLog) logger() logr.Logger {
	return funcr.NewJSON(func(obj string) {
		l.t.Log(obj)
		l.mu.Lock()
		defer l.mu.Unlock()
		switch {
		case strings.Contains(obj, `"error":`) && l.err == "":
			l.err = obj
		case strings.Contains(obj, "not responding"):
			if l.declined == nil {
				l.declined = map[string]bool{}
			}
			l.declined[obj] = true
		}
	}, funcr.Options{Verbosity: 1})
}

// first is the first error logged, or "".
func (l *errorLog) first() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// unanswered lists, one per line, the requests the server logged it did
// not answer; "" when there are none.
func (l *errorLog) unanswered() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := slices.Sorted(maps.Keys(l.declined))
	if len(lines) == 0 {
		return ""
	}
	return "; the server did not answer:\n  " + strings.Join(lines, "\n  ")
}

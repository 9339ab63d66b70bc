package xds_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
)

// xdsTypes are the resource types grpc-go's xds resolver subscribes to, in
// the order it asks for them.
var xdsTypes = []string{
	resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.EndpointType,
}

// controlPlane is an ADS server on 127.0.0.1 that serves one node the
// snapshots the test pushes and records what that node ACKed and NACKed.
type controlPlane struct {
	addr  string
	cache cachev3.SnapshotCache
	acks  *ackTracker
}

// startControlPlane serves go-control-plane's ADS server (state of the world,
// the protocol grpc-go speaks) from a snapshot cache on 127.0.0.1:0.
func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	acks := newAckTracker()
	cache := cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	xds := serverv3.NewServer(ctx, cache, serverv3.CallbackFuncs{StreamRequestFunc: acks.observe})
	srv := grpc.NewServer()
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(srv, xds)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for the xDS server: %v", err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		cancel()
	})
	return &controlPlane{addr: lis.Addr().String(), cache: cache, acks: acks}
}

// push publishes a snapshot of version for node, after checking it is consistent.
func (cp *controlPlane) push(t *testing.T, node, version string, resources map[resourcev3.Type][]types.Resource) {
	t.Helper()
	snap, err := cachev3.NewSnapshot(version, resources)
	if err != nil {
		t.Fatalf("snapshot %s: %v", version, err)
	}
	if err := consistent(snap); err != nil {
		t.Fatalf("snapshot %s is not consistent: %v", version, err)
	}
	if err := cp.cache.SetSnapshot(context.Background(), node, snap); err != nil {
		t.Fatalf("set snapshot %s for %s: %v", version, node, err)
	}
}

// nack is one rejection of a response by the client.
type nack struct {
	typeURL, nonce, message string
}

// ackTracker follows a node's requests on its ADS stream: a request with a
// response nonce and no error detail ACKs the version it carries; one with an
// error detail NACKs the response with that nonce.
type ackTracker struct {
	mu    sync.Mutex
	acked map[string]string // type URL -> version last ACKed
	nacks []nack
}

func newAckTracker() *ackTracker {
	return &ackTracker{acked: map[string]string{}}
}

func (a *ackTracker) observe(_ int64, req *discovery.DiscoveryRequest) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case req.GetErrorDetail() != nil:
		a.nacks = append(a.nacks, nack{typeURL: req.GetTypeUrl(), nonce: req.GetResponseNonce(), message: req.GetErrorDetail().GetMessage()})
	case req.GetResponseNonce() != "":
		a.acked[req.GetTypeUrl()] = req.GetVersionInfo()
	}
	return nil
}

// check returns an error naming every NACK so far, or one saying which types
// have not been ACKed at version yet; nil when all of xdsTypes are.
func (a *ackTracker) check(version string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.nacks) > 0 {
		// The server resends a NACKed response; say each reason once.
		msg, seen := "", map[string]bool{}
		for _, n := range a.nacks {
			if key := n.typeURL + n.message; !seen[key] {
				seen[key] = true
				msg += fmt.Sprintf("\n  %s (first NACK, nonce %s): %s", n.typeURL, n.nonce, n.message)
			}
		}
		return fmt.Errorf("grpc-go NACKed %d responses:%s", len(a.nacks), msg)
	}
	for _, typ := range xdsTypes {
		if got := a.acked[typ]; got != version {
			return fmt.Errorf("%s ACKed at version %q, want %q", typ, got, version)
		}
	}
	return nil
}

// nacked reports whether the client has NACKed anything.
func (a *ackTracker) nacked() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.nacks) > 0
}

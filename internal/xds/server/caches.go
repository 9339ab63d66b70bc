package server

import (
	"context"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
	"google.golang.org/protobuf/proto"
)

// caches holds the snapshots in two go-control-plane caches, by the kind of
// node: sidecars get an ADS-mode cache, which answers an ADS stream only
// once its request names every resource of the type and sends responses in
// Envoy's order (CDS, EDS, LDS, RDS); proxyless gRPC clients get a plain
// one, because they subscribe by name to just what they use (one API
// listener, its route configuration, its clusters) and an ADS-mode cache
// would never answer them.
type caches struct {
	sidecars, proxyless cache.SnapshotCache
	mux                 *cache.MuxCache
}

// newCaches makes the caches; nacked returns the version of typeURL that
// node last NACKed, "" if none (see holdNACKed).
func newCaches(log log.Logger, nacked func(node, typeURL string) string) *caches {
	c := &caches{
		sidecars:  cache.NewSnapshotCache(true, cache.IDHash{}, log),
		proxyless: cache.NewSnapshotCache(false, cache.IDHash{}, log),
	}
	c.mux = &cache.MuxCache{
		Classify:      func(r *cache.Request) string { return nodeKind(r.GetNode().GetId()) },
		ClassifyDelta: func(r *cache.DeltaRequest) string { return nodeKind(r.GetNode().GetId()) },
		Caches: map[string]cache.Cache{
			NodeKindSidecar:   holdNACKed{c.sidecars, nacked},
			NodeKindProxyless: holdNACKed{c.proxyless, nacked},
		},
	}
	return c
}

// holdNACKed keeps a state-of-the-world cache from answering a NACK with
// the version just refused. A NACK carries the last version the proxy
// accepted, which differs from the snapshot's, so go-control-plane's cache
// sends the snapshot again at once, the proxy refuses it again, and so on,
// thousands of times a second (go-control-plane issue #962). holdNACKed
// gives the cache the refused version instead: it then waits until the
// snapshot changes. Delta streams do not loop and pass through.
type holdNACKed struct {
	cache.Cache
	nacked func(node, typeURL string) string
}

func (h holdNACKed) CreateWatch(r *cache.Request, sub cache.Subscription, out chan cache.Response) (func(), error) {
	if r.GetErrorDetail() != nil {
		if v := h.nacked(r.GetNode().GetId(), r.GetTypeUrl()); v != "" {
			held := proto.Clone(r).(*cache.Request)
			held.VersionInfo = v
			r = held
		}
	}
	return h.Cache.CreateWatch(r, sub, out)
}

// nodeKind is the first field of a node ID; streams with any other ID are
// refused before they reach a cache.
func nodeKind(id string) string {
	if strings.HasPrefix(id, NodeKindProxyless+"~") {
		return NodeKindProxyless
	}
	return NodeKindSidecar
}

func (c *caches) of(id string) cache.SnapshotCache {
	if nodeKind(id) == NodeKindProxyless {
		return c.proxyless
	}
	return c.sidecars
}

// SetSnapshot publishes snap for the node id.
func (c *caches) SetSnapshot(ctx context.Context, id string, snap *cache.Snapshot) error {
	return c.of(id).SetSnapshot(ctx, id, snap)
}

// ClearSnapshot forgets the node id.
func (c *caches) ClearSnapshot(id string) { c.of(id).ClearSnapshot(id) }

// GetSnapshot returns the node's published snapshot.
func (c *caches) GetSnapshot(id string) (cache.ResourceSnapshot, error) {
	return c.of(id).GetSnapshot(id)
}

// GetStatusKeys lists the nodes either cache holds watch state for.
func (c *caches) GetStatusKeys() []string {
	return append(c.sidecars.GetStatusKeys(), c.proxyless.GetStatusKeys()...)
}

package server

import (
	"context"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
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

func newCaches(log log.Logger) *caches {
	c := &caches{
		sidecars:  cache.NewSnapshotCache(true, cache.IDHash{}, log),
		proxyless: cache.NewSnapshotCache(false, cache.IDHash{}, log),
	}
	c.mux = &cache.MuxCache{
		Classify:      func(r *cache.Request) string { return nodeKind(r.GetNode().GetId()) },
		ClassifyDelta: func(r *cache.DeltaRequest) string { return nodeKind(r.GetNode().GetId()) },
		Caches:        map[string]cache.Cache{NodeKindSidecar: c.sidecars, NodeKindProxyless: c.proxyless},
	}
	return c
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

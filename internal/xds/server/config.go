package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/skeinmesh/skein/internal/mesh"
)

// Config is one proxy's resources, as a Generator makes them.
type Config struct {
	// Resources are the resources by type URL (resource.ListenerType,
	// resource.RouteType, resource.ClusterType, resource.EndpointType, or
	// another type go-control-plane's snapshot knows). A missing core type
	// is published as an empty list.
	Resources map[string][]types.Resource
	// Sources name the objects whose content went into Resources, with the
	// generation used; Status counts the proxies by them.
	Sources []mesh.ObjectRef
}

// coreTypes are always in a published snapshot, empty or not, so that a
// proxy subscribed to them gets an answer it can ACK.
var coreTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// buildSnapshot makes the snapshot of cfg, versioning each type by a hash of
// its resources, and checks it for consistency: every EDS cluster has its
// ClusterLoadAssignment and every RDS name a listener uses (in a filter
// chain or an API listener) its RouteConfiguration, and every cluster a route or TCP proxy
// names is in the snapshot. versions maps type URL to version.
//
// Resources inside an Any are hashed as their bytes: a Generator that puts
// a map into an Any should marshal it deterministically, or an unchanged
// proxy may be pushed an identical config under a new version.
func buildSnapshot(h *hasher, cfg Config) (snap *cache.Snapshot, versions map[string]string, err error) {
	byType := make(map[string][]types.Resource, len(coreTypes)+len(cfg.Resources))
	for _, t := range coreTypes {
		byType[t] = nil
	}
	for t, rs := range cfg.Resources {
		byType[t] = rs
	}
	// VersionMap is filled here, from the hasher, so that go-control-plane
	// does not marshal and hash every resource again for delta streams.
	snap = &cache.Snapshot{VersionMap: make(map[string]map[string]string, len(byType))}
	versions = make(map[string]string, len(byType))
	for t, rs := range byType {
		idx := cache.GetResponseType(t)
		if idx == types.UnknownType {
			return nil, nil, fmt.Errorf("unknown resource type %q", t)
		}
		v, byName, err := hashResources(h, rs)
		if err != nil {
			return nil, nil, fmt.Errorf("hash %s resources: %w", shortType(t), err)
		}
		snap.Resources[idx] = cache.NewResources(v, rs)
		if len(snap.Resources[idx].Items) != len(rs) {
			return nil, nil, fmt.Errorf("%s resources have duplicate names", shortType(t))
		}
		versions[t] = v
		snap.VersionMap[t] = byName
	}
	if err := checkReferences(h, snap); err != nil {
		return nil, nil, err
	}
	return snap, versions, nil
}

// hashResources returns the version of a type's resources, a hash of their
// names and versions independent of their order, and each resource's
// version by name (go-control-plane's VersionMap for delta streams).
func hashResources(h *hasher, rs []types.Resource) (string, map[string]string, error) {
	byName := make(map[string]string, len(rs))
	names := make([]string, 0, len(rs))
	for _, r := range rs {
		v, err := h.hash(r)
		if err != nil {
			return "", nil, err
		}
		name := cache.GetResourceName(r)
		byName[name] = v
		names = append(names, name)
	}
	slices.Sort(names)
	sum := sha256.New()
	for _, n := range names {
		fmt.Fprintf(sum, "%d:%s%s;", len(n), n, byName[n])
	}
	return hex.EncodeToString(sum.Sum(nil)[:8]), byName, nil
}

// shortType is a type URL's short name for logs and metric labels:
// "cluster", "endpoint", "listener", "route", else the message name.
func shortType(typeURL string) string {
	switch typeURL {
	case resource.ClusterType:
		return "cluster"
	case resource.EndpointType:
		return "endpoint"
	case resource.ListenerType:
		return "listener"
	case resource.RouteType:
		return "route"
	}
	return strings.TrimPrefix(typeURL, resource.APITypePrefix)
}

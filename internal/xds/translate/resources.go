package translate

import (
	"cmp"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/skeinmesh/skein/internal/mesh"
)

// Resources is the config of one proxy. Each list is sorted by resource
// name and holds each name once. A Resources returned by Outbound may be
// shared between proxies: callers never modify one, nor the messages in it.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	// Sources are the objects (mesh.ObjectRef) whose content went into these resources, sorted, unique.
	Sources []mesh.ObjectRef

	// localized are the ClusterLoadAssignments whose endpoint priorities
	// depend on the caller's locality (failover.locality), by cluster name;
	// ForProxy rebuilds them for the proxy's own locality.
	localized map[string]claKey
}

// claKey says how to rebuild one ClusterLoadAssignment.
type claKey struct {
	svc    *mesh.Service
	port   mesh.Port
	subset string
}

// ForProxy is the whole config of proxy p: what its namespace may call
// (Outbound), what its pod serves (Inbound), and endpoint priorities
// relative to its own locality where a TrafficPolicy asks for locality
// failover.
func ForProxy(m *mesh.Model, p mesh.Proxy) *Resources {
	return ForProxyFrom(m, p, Outbound(m, p.Namespace))
}

// ForProxyFrom is ForProxy with the namespace's outbound config already
// translated: out must be Outbound(m, p.Namespace) for the same model. A
// server translating many proxies computes Outbound once per namespace and
// shares it; out is not modified.
func ForProxyFrom(m *mesh.Model, p mesh.Proxy, out *Resources) *Resources {
	r := Merge(out, Inbound(m, p))
	localize(m, p, r)
	return r
}

// localize replaces, in r, the ClusterLoadAssignments that depend on the
// caller's locality with ones whose priorities are relative to p's. r.Endpoints
// must be a slice r owns; the replaced messages are not modified.
func localize(m *mesh.Model, p mesh.Proxy, r *Resources) {
	if len(r.localized) == 0 {
		return
	}
	loc, ok := proxyLocality(m, p)
	if !ok {
		return
	}
	for i, cla := range r.Endpoints {
		k, ok := r.localized[cla.GetClusterName()]
		if !ok {
			continue
		}
		r.Endpoints[i] = buildCLA(m, cla.GetClusterName(), k, &loc)
	}
}

// Merge combines resources into new lists, sorted by name; when two hold a
// resource of the same name, the first one's is kept. The inputs are not
// modified.
func Merge(rs ...*Resources) *Resources {
	out := &Resources{}
	for _, r := range rs {
		if r == nil {
			continue
		}
		out.Listeners = mergeByName(out.Listeners, r.Listeners, (*listenerv3.Listener).GetName)
		out.Routes = mergeByName(out.Routes, r.Routes, (*routev3.RouteConfiguration).GetName)
		out.Clusters = mergeByName(out.Clusters, r.Clusters, (*clusterv3.Cluster).GetName)
		out.Endpoints = mergeByName(out.Endpoints, r.Endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName)
		out.Sources = mergeSorted(out.Sources, r.Sources, compareRefs)
		for k, v := range r.localized {
			if out.localized == nil {
				out.localized = make(map[string]claKey, len(r.localized))
			}
			if _, ok := out.localized[k]; !ok {
				out.localized[k] = v
			}
		}
	}
	return out
}

// mergeByName merges two lists sorted by name into a new one, keeping a's
// element where both have a name.
func mergeByName[T any](a, b []T, name func(T) string) []T {
	return mergeSorted(a, b, func(x, y T) int { return cmp.Compare(name(x), name(y)) })
}

// mergeSorted merges two sorted, duplicate-free lists into a new one, keeping
// a's element where both hold an equal one.
func mergeSorted[T any](a, b []T, compare func(x, y T) int) []T {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := make([]T, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := compare(a[i], b[j]); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// compareRefs orders ObjectRefs by kind, namespace, name and generation.
func compareRefs(a, b mesh.ObjectRef) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name), cmp.Compare(a.Generation, b.Generation))
}

// collector gathers one Resources while it is being built.
type collector struct {
	listeners []*listenerv3.Listener
	routes    []*routev3.RouteConfiguration
	clusters  map[string]*clusterv3.Cluster
	endpoints map[string]*endpointv3.ClusterLoadAssignment
	sources   map[mesh.ObjectRef]struct{}
	localized map[string]claKey
}

func newCollector() *collector {
	return &collector{
		clusters:  map[string]*clusterv3.Cluster{},
		endpoints: map[string]*endpointv3.ClusterLoadAssignment{},
		sources:   map[mesh.ObjectRef]struct{}{},
	}
}

func (c *collector) source(r mesh.ObjectRef) { c.sources[r] = struct{}{} }

// resources sorts what was collected.
func (c *collector) resources() *Resources {
	r := &Resources{Listeners: c.listeners, Routes: c.routes, localized: c.localized}
	slices.SortFunc(r.Listeners, func(a, b *listenerv3.Listener) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Routes, func(a, b *routev3.RouteConfiguration) int { return cmp.Compare(a.GetName(), b.GetName()) })
	r.Clusters = sortedValues(c.clusters)
	r.Endpoints = sortedValues(c.endpoints)
	for s := range c.sources {
		r.Sources = append(r.Sources, s)
	}
	slices.SortFunc(r.Sources, compareRefs)
	return r
}

// sortedValues is m's values in the order of their keys.
func sortedValues[T any](m map[string]T) []T {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]T, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

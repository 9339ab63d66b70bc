package server

import (
	"cmp"
	"slices"
	"sync"

	"github.com/skeinmesh/skein/internal/mesh"
)

// ObjectKey names an object whose content goes into proxies' configs.
type ObjectKey struct {
	// Kind is MeshService, TrafficPolicy or AuthorizationPolicy.
	Kind string
	// Namespace and Name are the object's.
	Namespace, Name string
}

// ProxyCounts is what the connected proxies did with an object's content.
type ProxyCounts struct {
	// Total is the number of connected proxies whose current snapshot
	// includes the object.
	Total int
	// Synced is how many of them ACKed every type of that snapshot.
	Synced int
	// Rejected is how many of them NACKed their snapshot's current version.
	Rejected int
	// Generation is the lowest generation of the object among those
	// snapshots; 0 when Total is 0.
	Generation int64
	// NACKMessage is one rejecting proxy's ID, type, version and error
	// detail; empty when none rejects.
	NACKMessage string
}

// Status counts the connected proxies whose current snapshot includes ref.
func (s *Server) Status(ref ObjectKey) ProxyCounts {
	type entry struct {
		ps  *proxyState
		gen int64
	}
	s.index.mu.Lock()
	list := make([]entry, 0, len(s.index.refs[ref]))
	for ps, gen := range s.index.refs[ref] {
		list = append(list, entry{ps, gen})
	}
	s.index.mu.Unlock()

	var c ProxyCounts
	for _, e := range list {
		e.ps.mu.Lock()
		closed, synced, rejected, nack := e.ps.closed, e.ps.synced, e.ps.rejected, e.ps.nack
		e.ps.mu.Unlock()
		if closed {
			continue
		}
		c.Total++
		if synced {
			c.Synced++
		}
		if rejected {
			c.Rejected++
			if c.NACKMessage == "" || nack < c.NACKMessage {
				c.NACKMessage = nack // the smallest, so that the message is stable
			}
		}
		if c.Generation == 0 || e.gen < c.Generation {
			c.Generation = e.gen
		}
	}
	return c
}

// sourceIndex maps each object to the proxies whose current snapshot
// includes it, with the generation used, so that Status costs the number of
// those proxies rather than of all. Lock order: proxyState.mu, then mu.
type sourceIndex struct {
	mu   sync.Mutex
	refs map[ObjectKey]map[*proxyState]int64
}

// set replaces ps's sources old with new and reports whether they differ.
func (x *sourceIndex) set(ps *proxyState, old, new []mesh.ObjectRef) bool {
	if sameSources(old, new) {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(ps, old)
	for _, r := range new {
		k := ObjectKey{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
		m := x.refs[k]
		if m == nil {
			m = map[*proxyState]int64{}
			x.refs[k] = m
		}
		if g, ok := m[ps]; !ok || r.Generation < g {
			m[ps] = r.Generation
		}
	}
	return true
}

// remove drops ps's sources.
func (x *sourceIndex) remove(ps *proxyState, old []mesh.ObjectRef) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(ps, old)
}

func (x *sourceIndex) removeLocked(ps *proxyState, old []mesh.ObjectRef) {
	for _, r := range old {
		k := ObjectKey{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
		if m := x.refs[k]; m != nil {
			delete(m, ps)
			if len(m) == 0 {
				delete(x.refs, k)
			}
		}
	}
}

func sameSources(a, b []mesh.ObjectRef) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sortedSources returns a sorted copy of refs, so that a Generator listing
// the same sources in another order changes nothing.
func sortedSources(refs []mesh.ObjectRef) []mesh.ObjectRef {
	out := slices.Clone(refs)
	slices.SortFunc(out, func(a, b mesh.ObjectRef) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Name, b.Name), cmp.Compare(a.Generation, b.Generation))
	})
	return out
}

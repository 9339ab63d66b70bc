package lb

import (
	"sync"
	"sync/atomic"
)

// hostSet is what a balancer was built over: its hosts, and their weights
// as they were then (Merge may change a shared Host's Weight later, for the
// next balancer).
type hostSet struct {
	hosts   []*Host
	weights []uint32 // each at least 1
}

func newHostSet(hosts []*Host) *hostSet {
	s := &hostSet{hosts: append([]*Host(nil), hosts...), weights: make([]uint32, len(hosts))}
	for i, h := range hosts {
		s.weights[i] = h.weight()
	}
	return s
}

// active returns the hosts to balance over now and their weights: the
// healthy ones, or all of them when none is healthy (Envoy's panic mode:
// better to try a host that failed its checks than to fail every request).
func (s *hostSet) active() ([]*Host, []uint32) {
	hosts := make([]*Host, 0, len(s.hosts))
	weights := make([]uint32, 0, len(s.hosts))
	for i, h := range s.hosts {
		if h.Healthy() {
			hosts = append(hosts, h)
			weights = append(weights, s.weights[i])
		}
	}
	if len(hosts) == 0 {
		return s.hosts, s.weights
	}
	return hosts, weights
}

// stamped is a balancer's view of its active hosts, with the health epoch
// it was built at.
type stamped[T any] struct {
	epoch uint64
	v     T
}

// lazy holds a balancer's current view, rebuilt when health changes.
type lazy[T any] struct {
	cur atomic.Pointer[stamped[T]]
	mu  sync.Mutex // held while rebuilding
}

// current returns b's view of its active hosts, rebuilding it with build if
// a host's health changed since it was built. While one Pick rebuilds,
// concurrent Picks keep using the previous view rather than wait.
func current[B, T any](l *lazy[T], b B, s *hostSet, build func(B, []*Host, []uint32) T) *T {
	e := healthEpoch.Load()
	c := l.cur.Load()
	if c != nil && c.epoch == e {
		return &c.v
	}
	if c == nil {
		l.mu.Lock()
	} else if !l.mu.TryLock() {
		return &c.v
	}
	defer l.mu.Unlock()
	if c = l.cur.Load(); c != nil && c.epoch == healthEpoch.Load() {
		return &c.v
	}
	// Read the epoch before the health flags: a flip during the build
	// leaves this view stale, and the next Pick builds again.
	e = healthEpoch.Load()
	hosts, weights := s.active()
	c = &stamped[T]{epoch: e, v: build(b, hosts, weights)}
	l.cur.Store(c)
	return &c.v
}

// equal reports whether all weights are the same.
func equal(weights []uint32) bool {
	for _, w := range weights {
		if w != weights[0] {
			return false
		}
	}
	return true
}

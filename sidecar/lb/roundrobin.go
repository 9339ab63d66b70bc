package lb

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// roundRobin is smooth weighted round robin. Its schedule is Envoy's EDF
// order; when one period of it (the sum of the weights divided by their
// greatest common divisor) is at most maxRoundRobinPeriod picks long, it is
// precomputed and Pick is one atomic increment; otherwise Pick runs the
// scheduler under a mutex.
type roundRobin struct {
	set  *hostSet
	view lazy[*rrView]
}

var _ Balancer = (*roundRobin)(nil)

type rrView struct {
	hosts []*Host
	// seq is one period of the schedule, as indexes into hosts, and next
	// counts the picks; nil seq means the period is too long to store.
	seq  []uint32
	next atomic.Uint64
	// mu guards sched, used when seq is nil.
	mu    sync.Mutex
	sched edf
	w     []float64
}

func newRoundRobin(s *hostSet) *roundRobin {
	b := &roundRobin{set: s}
	current(&b.view, b, s, buildRoundRobin)
	return b
}

func buildRoundRobin(_ *roundRobin, hosts []*Host, weights []uint32) *rrView {
	v := &rrView{hosts: hosts}
	if len(hosts) == 0 {
		return v
	}
	g := uint64(weights[0])
	for _, w := range weights[1:] {
		g = gcd(g, uint64(w))
	}
	var period uint64
	for _, w := range weights {
		period += uint64(w) / g
	}
	var e edf
	for i, w := range weights {
		e.add(i, float64(uint64(w)/g))
	}
	if period <= maxRoundRobinPeriod {
		v.seq = make([]uint32, period)
		for i := range v.seq {
			top := e.top()
			v.seq[i] = uint32(top)
			e.advance(float64(uint64(weights[top]) / g))
		}
		// Start each proxy at its own place in the period, so that
		// proxies that got the same endpoints do not all hit the same
		// host first.
		v.next.Store(rand.Uint64N(period))
		return v
	}
	v.w = make([]float64, len(weights))
	for i, w := range weights {
		v.w[i] = float64(uint64(w) / g)
	}
	for range rand.IntN(len(hosts)) {
		e.advance(v.w[e.top()])
	}
	v.sched = e
	return v
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Pick returns the next host of the schedule; hash is ignored.
func (b *roundRobin) Pick(uint64) *Host {
	v := *current(&b.view, b, b.set, buildRoundRobin)
	if len(v.hosts) == 0 {
		return nil
	}
	if v.seq != nil {
		n := v.next.Add(1) - 1
		return v.hosts[v.seq[n%uint64(len(v.seq))]]
	}
	v.mu.Lock()
	i := v.sched.top()
	v.sched.advance(v.w[i])
	v.mu.Unlock()
	return v.hosts[i]
}

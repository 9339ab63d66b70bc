package lb

import (
	"math/rand/v2"
	"slices"
	"sync"
)

// leastRequest is Envoy's LEAST_REQUEST with active_request_bias 1.0. With
// equal weights it is the power of choices: sample ChoiceCount distinct
// hosts at random and take the one with fewest requests in flight. With
// unequal weights it is EDF weighted round robin in which a host's weight is
// weight/(requests in flight + 1), recomputed each time it is picked.
type leastRequest struct {
	set     *hostSet
	choices int
	view    lazy[*lrView]
}

var _ Balancer = (*leastRequest)(nil)

type lrView struct {
	hosts    []*Host
	weights  []uint32
	weighted bool
	mu       sync.Mutex // guards sched when weighted
	sched    edf
}

func newLeastRequest(s *hostSet, choices int) *leastRequest {
	b := &leastRequest{set: s, choices: choices}
	current(&b.view, b, s, buildLeastRequest)
	return b
}

func buildLeastRequest(_ *leastRequest, hosts []*Host, weights []uint32) *lrView {
	v := &lrView{hosts: hosts, weights: weights}
	if len(hosts) == 0 || equal(weights) {
		return v
	}
	v.weighted = true
	for i, h := range hosts {
		v.sched.add(i, effectiveWeight(weights[i], h))
	}
	return v
}

// effectiveWeight is weight/(active+1), Envoy's least-request weight with
// active_request_bias 1.0.
func effectiveWeight(w uint32, h *Host) float64 {
	return float64(w) / float64(max(h.Active(), 0)+1)
}

// Pick returns a host with few requests in flight; hash is ignored.
func (b *leastRequest) Pick(uint64) *Host {
	v := *current(&b.view, b, b.set, buildLeastRequest)
	n := len(v.hosts)
	switch {
	case n == 0:
		return nil
	case n == 1:
		return v.hosts[0]
	case v.weighted:
		v.mu.Lock()
		i := v.sched.top()
		v.sched.advance(effectiveWeight(v.weights[i], v.hosts[i]))
		v.mu.Unlock()
		return v.hosts[i]
	case b.choices >= n:
		// Every host is a candidate: the least loaded, ties broken
		// by a random start.
		start := rand.IntN(n)
		best := v.hosts[start]
		for k := 1; k < n; k++ {
			if h := v.hosts[(start+k)%n]; h.Active() < best.Active() {
				best = h
			}
		}
		return best
	}
	// Distinct candidates, so that with two hosts the busier one is
	// never picked.
	var drawn [MaxChoiceCount]int
	best := (*Host)(nil)
	for c := 0; c < b.choices; {
		i := rand.IntN(n)
		if slices.Contains(drawn[:c], i) {
			continue
		}
		drawn[c] = i
		c++
		if h := v.hosts[i]; best == nil || h.Active() < best.Active() {
			best = h
		}
	}
	return best
}

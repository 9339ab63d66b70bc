package lb

import (
	"math/rand/v2"
	"slices"
)

// random picks each host with probability weight/sum of weights.
type random struct {
	set  *hostSet
	view lazy[randView]
}

var _ Balancer = (*random)(nil)

type randView struct {
	hosts []*Host
	// cum holds the running sums of the weights; nil when all weights
	// are equal and a uniform index does.
	cum []uint64
}

func newRandom(s *hostSet) *random {
	b := &random{set: s}
	current(&b.view, b, s, buildRandom)
	return b
}

func buildRandom(_ *random, hosts []*Host, weights []uint32) randView {
	v := randView{hosts: hosts}
	if len(hosts) == 0 || equal(weights) {
		return v
	}
	v.cum = make([]uint64, len(weights))
	var sum uint64
	for i, w := range weights {
		sum += uint64(w)
		v.cum[i] = sum
	}
	return v
}

// Pick returns a random host; hash is ignored.
func (b *random) Pick(uint64) *Host {
	v := current(&b.view, b, b.set, buildRandom)
	switch {
	case len(v.hosts) == 0:
		return nil
	case v.cum == nil:
		return v.hosts[rand.IntN(len(v.hosts))]
	}
	r := rand.Uint64N(v.cum[len(v.cum)-1])
	// The first host whose running sum exceeds r.
	i, _ := slices.BinarySearch(v.cum, r+1)
	return v.hosts[i]
}

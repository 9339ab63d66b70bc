package lb

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// ringHash is Envoy's RING_HASH with xxHash: each host gets points on a
// 64-bit ring at xxHash64("<address>_<i>"), i = 0, 1, ..., as many as its
// share of the weight times the ring size, and a request goes to the host of
// the first point at or after its hash, wrapping around. Adding or removing
// a host moves only the keys between its points and their predecessors.
type ringHash struct {
	set      *hostSet
	min, max uint64
	view     lazy[ring]
}

var _ Balancer = (*ringHash)(nil)

// ring is sorted by hash; host[i] owns the point hash[i].
type ring struct {
	hash []uint64
	host []*Host
}

func newRingHash(s *hostSet, minSize, maxSize uint64) *ringHash {
	b := &ringHash{set: s, min: minSize, max: maxSize}
	current(&b.view, b, s, buildRing)
	return b
}

func buildRing(b *ringHash, hosts []*Host, weights []uint32) ring {
	if len(hosts) == 0 {
		return ring{}
	}
	// Hosts in address order, so that every proxy builds the same ring
	// whatever order the endpoints came in.
	order := make([]int, len(hosts))
	var sum, least uint64 = 0, math.MaxUint64
	for i, w := range weights {
		order[i] = i
		sum += uint64(w)
		least = min(least, uint64(w))
	}
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(hosts[x].Address, hosts[y].Address) })

	// Scale the ring so that the lightest host gets a whole number of
	// points, at least its share of MinRingSize, capped at MaxRingSize;
	// the others get their share of that, carried over as a running sum
	// so that fractions even out.
	minNorm := float64(least) / float64(sum)
	scale := min(math.Ceil(minNorm*float64(b.min))/minNorm, float64(b.max))
	size := uint64(math.Ceil(scale))
	r := ring{hash: make([]uint64, 0, size+uint64(len(hosts))), host: make([]*Host, 0, size+uint64(len(hosts)))}
	var have, want float64
	var key []byte
	for _, i := range order {
		want += scale * float64(weights[i]) / float64(sum)
		key = append(append(key[:0], hosts[i].Address...), '_')
		for n := 0; have < want; n++ {
			r.hash = append(r.hash, xxhash.Sum64(strconv.AppendInt(key, int64(n), 10)))
			r.host = append(r.host, hosts[i])
			have++
		}
	}
	sortRing(r)
	return r
}

// sortRing sorts r's points by hash, ties by address.
func sortRing(r ring) {
	idx := make([]int, len(r.hash))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int {
		if c := cmp.Compare(r.hash[x], r.hash[y]); c != 0 {
			return c
		}
		return cmp.Compare(r.host[x].Address, r.host[y].Address)
	})
	hash := make([]uint64, len(idx))
	host := make([]*Host, len(idx))
	for to, from := range idx {
		hash[to], host[to] = r.hash[from], r.host[from]
	}
	copy(r.hash, hash)
	copy(r.host, host)
}

// Pick returns the host of the first ring point at or after hash.
func (b *ringHash) Pick(hash uint64) *Host {
	r := current(&b.view, b, b.set, buildRing)
	if len(r.hash) == 0 {
		return nil
	}
	i, _ := slices.BinarySearch(r.hash, hash)
	if i == len(r.hash) {
		i = 0
	}
	return r.host[i]
}

package lb

import (
	"cmp"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// maglev is the lookup table of "Maglev: A Fast and Reliable Software
// Network Load Balancer" (NSDI 2016, section 3.4), weighted as Envoy's
// MAGLEV: each host walks its own permutation of the table (offset from
// xxHash64 of its address with seed 0, skip from seed 1) and claims the
// next free slot on its turn; a host whose weight is 1/k of the heaviest
// takes a turn every k rounds. A request goes to table[hash % size].
type maglev struct {
	set  *hostSet
	size uint64
	view lazy[maglevTable]
}

var _ Balancer = (*maglev)(nil)

type maglevTable struct {
	hosts []*Host
	slot  []uint32 // indexes into hosts
}

func newMaglev(s *hostSet, size uint64) *maglev {
	b := &maglev{set: s, size: size}
	current(&b.view, b, s, buildMaglev)
	return b
}

type maglevEntry struct {
	offset, skip, next uint64
	weight, target     float64
}

func buildMaglev(b *maglev, hosts []*Host, weights []uint32) maglevTable {
	if len(hosts) == 0 {
		return maglevTable{}
	}
	// Hosts in address order: the table depends on the order in which
	// hosts take their turns.
	t := maglevTable{hosts: slices.Clone(hosts), slot: make([]uint32, b.size)}
	w := slices.Clone(weights)
	order := make([]int, len(hosts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(hosts[x].Address, hosts[y].Address) })
	var sum, heaviest uint64
	for i, o := range order {
		t.hosts[i], w[i] = hosts[o], weights[o]
		sum += uint64(w[i])
		heaviest = max(heaviest, uint64(w[i]))
	}
	maxNorm := float64(heaviest) / float64(sum)

	entries := make([]maglevEntry, len(hosts))
	d := xxhash.NewWithSeed(1)
	for i, h := range t.hosts {
		d.ResetWithSeed(1)
		d.WriteString(h.Address)
		entries[i] = maglevEntry{
			offset: xxhash.Sum64String(h.Address) % b.size,
			skip:   d.Sum64()%(b.size-1) + 1,
			weight: float64(w[i]) / float64(sum),
		}
	}
	const free = ^uint32(0)
	for i := range t.slot {
		t.slot[i] = free
	}
	filled := uint64(0)
	for round := 1; filled < b.size; round++ {
		for i := range entries {
			if filled == b.size {
				break
			}
			e := &entries[i]
			if float64(round)*e.weight < e.target {
				continue // not this host's turn yet
			}
			e.target += maxNorm
			c := (e.offset + e.skip*e.next) % b.size
			for t.slot[c] != free {
				e.next++
				c = (e.offset + e.skip*e.next) % b.size
			}
			t.slot[c] = uint32(i)
			e.next++
			filled++
		}
	}
	return t
}

// Pick returns the host of table slot hash % size.
func (b *maglev) Pick(hash uint64) *Host {
	t := current(&b.view, b, b.set, buildMaglev)
	if len(t.hosts) == 0 {
		return nil
	}
	return t.hosts[t.slot[hash%uint64(len(t.slot))]]
}

package lb

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
)

// OverprovisioningFactor is Envoy's default overprovisioning factor, 1.4,
// in percent: a priority level counts as fully available while at least
// 1/1.4 (about 71.4%) of its hosts are healthy.
const OverprovisioningFactor = 140

// PrioritySet balances over hosts grouped by Priority, as Envoy's priority
// levels. Each level has its own balancer of the same policy; a request
// first chooses a level by the levels' loads (see priorityLoad), then a host
// in it. All traffic goes to priority 0 while at least 1/1.4 of its hosts
// are healthy, and spills to the next levels as its health drops.
type PrioritySet struct {
	policy Policy
	levels []level // by ascending Priority, none empty
	load   atomic.Pointer[levelLoads]
}

var _ Balancer = (*PrioritySet)(nil)

type level struct {
	priority uint32
	hosts    []*Host
	b        Balancer
}

// levelLoads is the levels' loads at a health epoch, as running sums of
// percentages (the last is 100).
type levelLoads struct {
	epoch uint64
	cum   []uint32
}

// NewPrioritySet builds a PrioritySet of policy p over hosts, grouped by
// their Priority now.
func NewPrioritySet(p Policy, hosts []*Host, o Options) (*PrioritySet, error) {
	byPriority := map[uint32][]*Host{}
	for _, h := range hosts {
		prio := h.Priority()
		byPriority[prio] = append(byPriority[prio], h)
	}
	s := &PrioritySet{policy: p}
	for prio, hs := range byPriority {
		b, err := New(p, hs, o)
		if err != nil {
			return nil, err
		}
		s.levels = append(s.levels, level{priority: prio, hosts: hs, b: b})
	}
	slices.SortFunc(s.levels, func(a, b level) int { return cmp.Compare(a.priority, b.priority) })
	s.loads()
	return s, nil
}

// loads returns the levels' current loads, recomputing them after a health
// change.
func (s *PrioritySet) loads() *levelLoads {
	e := healthEpoch.Load()
	if l := s.load.Load(); l != nil && l.epoch == e {
		return l
	}
	healthy := make([]int, len(s.levels))
	total := make([]int, len(s.levels))
	for i, lv := range s.levels {
		total[i] = len(lv.hosts)
		for _, h := range lv.hosts {
			if h.Healthy() {
				healthy[i]++
			}
		}
	}
	l := &levelLoads{epoch: e, cum: priorityLoad(healthy, total)}
	for i := 1; i < len(l.cum); i++ {
		l.cum[i] += l.cum[i-1]
	}
	s.load.Store(l)
	return l
}

// Pick chooses a level, by the request's hash for RingHash and Maglev (so
// that a key stays on its level) and at random otherwise, then a host in it.
func (s *PrioritySet) Pick(hash uint64) *Host {
	if len(s.levels) == 0 {
		return nil
	}
	var r uint32
	if s.policy.hashed() {
		r = uint32(hash % 100)
	} else {
		r = rand.Uint32N(100)
	}
	cum := s.loads().cum
	for i, c := range cum {
		if r < c {
			return s.levels[i].b.Pick(hash)
		}
	}
	return s.levels[0].b.Pick(hash) // not reached: cum ends at 100
}

// LevelLoad is the share of requests that a priority level gets.
type LevelLoad struct {
	Priority uint32
	Percent  uint32
}

// Load reports each level's current share of requests, by ascending
// priority. For the admin page and tests; it allocates.
func (s *PrioritySet) Load() []LevelLoad {
	cum := s.loads().cum
	out := make([]LevelLoad, len(cum))
	prev := uint32(0)
	for i, c := range cum {
		out[i] = LevelLoad{Priority: s.levels[i].priority, Percent: c - prev}
		prev = c
	}
	return out
}

func (l LevelLoad) String() string { return fmt.Sprintf("P%d:%d%%", l.Priority, l.Percent) }

// priorityLoad is Envoy's priority load, in whole percent summing to 100,
// for levels with healthy[i] of total[i] hosts healthy, highest priority
// first:
//
//	health(i) = min(100, 140 * healthy(i) / total(i))        (integer division)
//	T         = min(100, health(0) + health(1) + ...)        normalized total health
//	load(i)   = min(100 - load(0) - ... - load(i-1), health(i) * 100 / T)
//
// and what rounding leaves over goes to the first level with health > 0. So
// priority 0 takes everything while 140% of its healthy share is at least
// 100%, the next levels take what it cannot, and when all levels together
// are below 100% the loads are scaled up to sum to 100. When no host is
// healthy anywhere (T = 0) the load follows the levels' host counts, each
// level picking among all its hosts (Envoy's total panic).
func priorityLoad(healthy, total []int) []uint32 {
	load := make([]uint32, len(total))
	health := make([]uint32, len(total))
	var sum uint32
	for i := range total {
		if total[i] > 0 {
			health[i] = min(100, uint32(OverprovisioningFactor*healthy[i]/total[i]))
		}
		sum += health[i]
	}
	norm := min(100, sum)
	left := uint32(100)
	if norm == 0 {
		hosts := 0
		for _, n := range total {
			hosts += n
		}
		if hosts == 0 {
			if len(load) > 0 {
				load[0] = 100
			}
			return load
		}
		first := -1
		for i, n := range total {
			if first < 0 && n > 0 {
				first = i
			}
			load[i] = uint32(100 * n / hosts)
			left -= load[i]
		}
		load[first] += left
		return load
	}
	first := -1
	for i, h := range health {
		if first < 0 && h > 0 {
			first = i
		}
		load[i] = min(left, h*100/norm)
		left -= load[i]
	}
	load[first] += left
	return load
}

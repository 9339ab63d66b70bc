package lb

import (
	"math"
	"slices"
	"testing"
)

var hashPolicies = []Policy{RingHash, Maglev}

// TestHashSameKeySameHost: a key goes to the same host on every Pick, and to
// the same address on a balancer built from the same endpoints listed in
// another order (as another proxy would get them).
func TestHashSameKeySameHost(t *testing.T) {
	for _, p := range hashPolicies {
		t.Run(p.String(), func(t *testing.T) {
			hosts := mkHosts(1, 2, 3, 1, 1)
			b := mustNew(t, p, hosts, Options{})
			rev := mkHosts(1, 2, 3, 1, 1)
			slices.Reverse(rev)
			other := mustNew(t, p, rev, Options{})
			seen := map[*Host]bool{}
			for i := range 10000 {
				h := b.Pick(key(i))
				seen[h] = true
				if again := b.Pick(key(i)); again != h {
					t.Fatalf("key %d: %s then %s", i, h.Address, again.Address)
				}
				if o := other.Pick(key(i)); o.Address != h.Address {
					t.Fatalf("key %d: %s, but %s with the hosts reversed", i, h.Address, o.Address)
				}
			}
			if len(seen) != len(hosts) {
				t.Errorf("10000 keys reached %d of %d hosts", len(seen), len(hosts))
			}
		})
	}
}

// remap builds p over n equal hosts and over the same hosts less one, and
// returns the fraction of 100k keys that changed host, and the fraction of
// keys not on the removed host that changed.
func remap(t *testing.T, p Policy, o Options, n, removed int) (moved, movedOther float64) {
	hosts := mkHosts(slices.Repeat([]uint32{1}, n)...)
	before := mustNew(t, p, hosts, o)
	after := mustNew(t, p, slices.Delete(slices.Clone(hosts), removed, removed+1), o)
	var m, mo, others int
	for i := range picksN {
		a, b := before.Pick(key(i)), after.Pick(key(i))
		if a != hosts[removed] {
			others++
			if a != b {
				mo++
			}
		}
		if a != b {
			m++
		}
	}
	return float64(m) / picksN, float64(mo) / float64(others)
}

// TestRingHashRemoval: removing one of 10 hosts. Envoy scales the ring so
// that the lightest host gets ceil(its share × MinRingSize) points, so at the
// default 1024 the 9 survivors go from 103 to 114 points each, and the new
// points take over about 1/10 of the survivors' keys as well: between 1/10
// and 2.5/10 of all keys move (1.7/10 measured). When the count of points
// per host does not change (MinRingSize 41: 5 each for 10 and for 9 hosts)
// the ring is plain ketama: none of the survivors' keys move.
func TestRingHashRemoval(t *testing.T) {
	const n = 10
	for _, removed := range []int{0, 4, 9} {
		moved, other := remap(t, RingHash, Options{}, n, removed)
		t.Logf("default ring: removing host %d of %d moved %.4f of keys, %.4f of the others'", removed, n, moved, other)
		if moved < 1.0/n || moved > 2.5/n {
			t.Errorf("removing host %d of %d moved %.4f of keys, want between 0.1 and 0.25", removed, n, moved)
		}
		moved, other = remap(t, RingHash, Options{MinRingSize: 41}, n, removed)
		if other != 0 || moved == 0 {
			t.Errorf("5 points per host: removing host %d moved %.4f of the others' keys, want 0 (and %.4f in all, want > 0)", removed, other, moved)
		}
	}
}

// TestMaglevRemovalRemapsAboutOneNth: removing one of 10 hosts moves its
// keys (1/10 ± 1%: Maglev spreads the table within a slot or so of even)
// and, as the paper's Figure 12 shows for tables of this size, only a
// small fraction more: under 2% of the other hosts' keys. Together between
// 0.9/10 and 1.3/10.
func TestMaglevRemovalRemapsAboutOneNth(t *testing.T) {
	const n = 10
	for _, removed := range []int{0, 4, 9} {
		moved, other := remap(t, Maglev, Options{}, n, removed)
		t.Logf("removing host %d of %d moved %.4f of keys, %.4f of the others'", removed, n, moved, other)
		if other > 0.02 {
			t.Errorf("removing host %d moved %.4f of the other hosts' keys, want < 0.02", removed, other)
		}
		if moved < 0.9/n || moved > 1.3/n {
			t.Errorf("removing host %d of %d moved %.4f of keys, want between 0.09 and 0.13", removed, n, moved)
		}
	}
}

// TestHashWeights: with weights 1,2,3,4 the keys split by weight. For ring
// hash (MinRingSize 65536, so the lightest host has 6554 points) each host's
// arc is its share within 5 × share/√points, plus the keys' own binomial
// noise; for Maglev the table is split exactly up to a slot per round, and
// only the keys' binomial noise is left.
func TestHashWeights(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		o    Options
	}{
		{name: "RingHash", p: RingHash, o: Options{MinRingSize: 1 << 16}},
		{name: "Maglev", p: Maglev},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts := mkHosts(1, 2, 3, 4)
			got := picks(t, mustNew(t, tc.p, hosts, tc.o), picksN)
			for i, p := range share(hosts) {
				bound := binomialBound(picksN, p)
				if tc.p == RingHash {
					points := p / 0.1 * 6554
					arc := 5 * p / math.Sqrt(points) * picksN
					bound = math.Sqrt(bound*bound + arc*arc)
				}
				if d := math.Abs(float64(got[hosts[i]]) - p*picksN); d > bound {
					t.Errorf("host %d (weight %d): %d keys, want %.0f ± %.0f", i, hosts[i].Weight(), got[hosts[i]], p*picksN, bound)
				}
			}
		})
	}
}

// TestMaglevTableSplitsByWeight: the table itself gives each host its
// weight share of slots within 0.1% absolute.
func TestMaglevTableSplitsByWeight(t *testing.T) {
	hosts := mkHosts(1, 2, 3, 4, 10)
	b := mustNew(t, Maglev, hosts, Options{}).(*maglev)
	tab := current(&b.view, b, b.set, buildMaglev)
	count := map[*Host]int{}
	for _, s := range tab.slot {
		count[tab.hosts[s]]++
	}
	for i, p := range share(hosts) {
		if s := float64(count[hosts[i]]) / float64(len(tab.slot)); math.Abs(s-p) > 0.001 {
			t.Errorf("host %d (weight %d): %.4f of slots, want %.4f", i, hosts[i].Weight(), s, p)
		}
	}
}

// TestRingHashSize: the ring has MinRingSize points for equal weights, and
// MaxRingSize caps it.
func TestRingHashSize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []uint32
		o       Options
		want    int
	}{
		{name: "default, equal", weights: []uint32{1, 1, 1, 1}, want: 1024},
		{name: "min size not a multiple", weights: []uint32{1, 1, 1}, o: Options{MinRingSize: 100}, want: 102},
		{name: "weighted", weights: []uint32{1, 3}, o: Options{MinRingSize: 100}, want: 100},
		{name: "capped", weights: []uint32{1, 1000}, o: Options{MaxRingSize: 2000}, want: 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mustNew(t, RingHash, mkHosts(tc.weights...), tc.o).(*ringHash)
			if got := len(current(&b.view, b, b.set, buildRing).hash); got != tc.want {
				t.Errorf("ring has %d points, want %d", got, tc.want)
			}
		})
	}
}

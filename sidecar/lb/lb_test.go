package lb

import (
	"errors"
	"testing"
)

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{name: "choice count 1", o: Options{ChoiceCount: 1}},
		{name: "choice count above the limit", o: Options{ChoiceCount: MaxChoiceCount + 1}},
		{name: "min ring above max", o: Options{MinRingSize: 2048, MaxRingSize: 1024}},
		{name: "max ring above 8M", o: Options{MaxRingSize: MaxRingSize + 1}},
		{name: "table size not prime", o: Options{TableSize: 65536}},
		{name: "table size above the limit", o: Options{TableSize: 5000077}}, // prime
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(RoundRobin, mkHosts(1), tc.o); err == nil {
				t.Errorf("New accepted %+v", tc.o)
			}
		})
	}
	if _, err := New(Policy(42), nil, Options{}); !errors.Is(err, ErrPolicy) {
		t.Errorf("unknown policy: err = %v, want ErrPolicy", err)
	}
	if _, err := New(Maglev, mkHosts(1), Options{TableSize: 251}); err != nil {
		t.Errorf("prime table size 251 rejected: %v", err)
	}
}

func TestEmptyPicksNil(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			if h := mustNew(t, p, nil, Options{}).Pick(7); h != nil {
				t.Errorf("Pick on no hosts = %v, want nil", h.Address)
			}
			s, err := NewPrioritySet(p, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if h := s.Pick(7); h != nil {
				t.Errorf("PrioritySet Pick on no hosts = %v, want nil", h.Address)
			}
		})
	}
}

// TestUnhealthySkipped: a host marked unhealthy after the balancer was built
// gets no picks while others are healthy (exactly 0 of 20k), and the other
// three share its load: each within 5 binomial standard deviations of a
// third, plus 5% absolute for the hash policies, whose arcs vary (a rebuilt
// ring of 3 × 342 points has σ ≈ 1.8% per host). Healthy again, it gets at
// least half its quarter back; with every host unhealthy each host still
// gets at least half its quarter (panic mode).
func TestUnhealthySkipped(t *testing.T) {
	const n = 20000
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			hosts := mkHosts(1, 1, 1, 1)
			b := mustNew(t, p, hosts, Options{})
			hosts[1].SetHealthy(false)
			defer hosts[1].SetHealthy(true)
			got := picks(t, b, n)
			if got[hosts[1]] != 0 {
				t.Errorf("unhealthy host picked %d times of %d", got[hosts[1]], n)
			}
			for _, i := range []int{0, 2, 3} {
				if d := float64(got[hosts[i]]) - n/3.0; d > binomialBound(n, 1/3.0)+0.05*n || -d > binomialBound(n, 1/3.0)+0.05*n {
					t.Errorf("healthy host %d picked %d of %d, want about a third", i, got[hosts[i]], n)
				}
			}

			hosts[1].SetHealthy(true)
			if got := picks(t, b, n); got[hosts[1]] < n/8 {
				t.Errorf("host healthy again picked %d of %d, want about a quarter", got[hosts[1]], n)
			}

			for _, h := range hosts {
				h.SetHealthy(false)
			}
			got = picks(t, b, n)
			for i, h := range hosts {
				h.SetHealthy(true)
				if got[h] < n/8 {
					t.Errorf("all unhealthy: host %d picked %d of %d, want about a quarter", i, got[h], n)
				}
			}
		})
	}
}

// TestPickAllocatesNothing for every policy, equal and unequal weights, flat
// and by priority.
func TestPickAllocatesNothing(t *testing.T) {
	for _, p := range policies {
		for _, weights := range [][]uint32{{1, 1, 1, 1}, {1, 2, 3, 4}, {10007, 20011}} {
			hosts := mkHosts(weights...)
			hosts[len(hosts)-1].prio.Store(1)
			b := mustNew(t, p, hosts, Options{})
			s, err := NewPrioritySet(p, hosts, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var k uint64
			if a := testing.AllocsPerRun(1000, func() { k++; b.Pick(k * 0x9e3779b97f4a7c15) }); a != 0 {
				t.Errorf("%s %v: Pick allocates %v times", p, weights, a)
			}
			if a := testing.AllocsPerRun(1000, func() { k++; s.Pick(k * 0x9e3779b97f4a7c15) }); a != 0 {
				t.Errorf("%s %v: PrioritySet.Pick allocates %v times", p, weights, a)
			}
		}
	}
}

// TestZeroWeightIsOne: weight 0 counts as 1.
func TestZeroWeightIsOne(t *testing.T) {
	const n = 10000
	hosts := mkHosts(0, 1)
	got := picks(t, mustNew(t, RoundRobin, hosts, Options{}), n)
	if got[hosts[0]] != n/2 {
		t.Errorf("weight 0 host picked %d of %d, want %d", got[hosts[0]], n, n/2)
	}
}

func TestMergeKeepsHosts(t *testing.T) {
	old := mkHosts(1, 1, 1) // .1, .2, .3
	old[0].Acquire()
	old[0].Acquire()
	old[1].SetHealthy(false)
	defer old[1].SetHealthy(true)

	next := []*Host{
		NewHost("10.0.0.2:8080", 5, 1, "zone-b"),
		{Address: "10.0.0.9:8080"},
		NewHost("10.0.0.1:8080", 3, 0, ""),
		NewHost("10.0.0.9:8080", 7, 0, ""), // listed twice: the first stays
	}
	got := Merge(old, next)
	if len(got) != 3 {
		t.Fatalf("Merge returned %d hosts, want 3", len(got))
	}
	if got[0] != old[1] || got[1] != next[1] || got[2] != old[0] {
		t.Fatalf("Merge did not keep the old pointers in next's order")
	}
	if got[0].Weight() != 5 || got[0].Priority() != 1 || got[0].Locality() != "zone-b" || got[0].Healthy() {
		t.Errorf("kept host 10.0.0.2: weight %d priority %d locality %q healthy=%v, want next's weight, priority, locality and old health",
			got[0].Weight(), got[0].Priority(), got[0].Locality(), got[0].Healthy())
	}
	if got[2].Active() != 2 || got[2].Weight() != 3 {
		t.Errorf("kept host 10.0.0.1: active %d weight %d, want 2 and 3", got[2].Active(), got[2].Weight())
	}
	if got[1].Weight() != 0 || !got[1].Healthy() {
		t.Errorf("new host 10.0.0.9: weight %d healthy=%v, want the first listing, healthy", got[1].Weight(), got[1].Healthy())
	}
}

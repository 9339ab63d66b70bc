package lb

import (
	"math"
	"slices"
	"testing"
)

// TestPriorityLoad pins the formula to the examples of Envoy's priority
// levels documentation (overprovisioning factor 1.4).
func TestPriorityLoad(t *testing.T) {
	for _, tc := range []struct {
		name    string
		healthy []int // healthy hosts per level, priority 0 first
		total   []int // hosts per level
		want    []uint32
	}{
		{name: "all healthy", healthy: []int{100, 100}, total: []int{100, 100}, want: []uint32{100, 0}},
		{name: "72% still counts as fully available", healthy: []int{72, 100}, total: []int{100, 100}, want: []uint32{100, 0}},
		{name: "71% spills 1%", healthy: []int{71, 100}, total: []int{100, 100}, want: []uint32{99, 1}},
		{name: "50%", healthy: []int{50, 100}, total: []int{100, 100}, want: []uint32{70, 30}},
		{name: "25%", healthy: []int{25, 100}, total: []int{100, 100}, want: []uint32{35, 65}},
		{name: "priority 0 down", healthy: []int{0, 100}, total: []int{100, 100}, want: []uint32{0, 100}},
		{name: "spill through to a third level", healthy: []int{25, 25, 100}, total: []int{100, 100, 100}, want: []uint32{35, 35, 30}},
		{name: "normalized: both at 20%", healthy: []int{2, 2}, total: []int{10, 10}, want: []uint32{50, 50}},
		{name: "normalized: 28+14 of 100", healthy: []int{2, 1}, total: []int{10, 10}, want: []uint32{67, 33}},
		{name: "rounding left over goes to the first healthy level", healthy: []int{0, 2, 2, 2}, total: []int{5, 10, 10, 10}, want: []uint32{0, 34, 33, 33}},
		{name: "nothing healthy: by host count", healthy: []int{0, 0}, total: []int{3, 1}, want: []uint32{75, 25}},
		{name: "nothing healthy, rounding", healthy: []int{0, 0, 0}, total: []int{1, 1, 1}, want: []uint32{34, 33, 33}},
		{name: "one level", healthy: []int{1}, total: []int{10}, want: []uint32{100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := priorityLoad(tc.healthy, tc.total); !slices.Equal(got, tc.want) {
				t.Errorf("priorityLoad(%v of %v) = %v, want %v", tc.healthy, tc.total, got, tc.want)
			}
		})
	}
}

// prioHosts returns n hosts at priority 0 then n at priority 1.
func prioHosts(n int) []*Host {
	hosts := mkHosts(slices.Repeat([]uint32{1}, 2*n)...)
	for _, h := range hosts[n:] {
		h.prio.Store(1)
	}
	return hosts
}

func setHealthy(hosts []*Host, healthy bool) {
	for _, h := range hosts {
		h.SetHealthy(healthy)
	}
}

// TestPriorityFailover: traffic stays on priority 0 while it is healthy, all
// of it goes to priority 1 when priority 0 is all unhealthy, and it comes
// back when priority 0 recovers.
func TestPriorityFailover(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			hosts := prioHosts(4)
			s, err := NewPrioritySet(p, hosts, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer setHealthy(hosts, true)
			atLevel1 := func() int {
				n := 0
				for h, c := range picks(t, s, 10000) {
					if h.Priority() == 1 {
						n += c
					}
				}
				return n
			}
			if n := atLevel1(); n != 0 {
				t.Errorf("all healthy: %d of 10000 picks at priority 1, want 0", n)
			}
			setHealthy(hosts[:4], false)
			if n := atLevel1(); n != 10000 {
				t.Errorf("priority 0 down: %d of 10000 picks at priority 1, want all", n)
			}
			setHealthy(hosts[:4], true)
			if n := atLevel1(); n != 0 {
				t.Errorf("priority 0 back: %d of 10000 picks at priority 1, want 0", n)
			}
		})
	}
}

// TestPrioritySpill: with 5 of 10 priority-0 hosts unhealthy, priority 0 is
// 70% available (5/10 × 1.4) and 30% of picks spill to priority 1; the
// observed share is within 5 binomial standard deviations of 30% (the level
// is chosen at random, or by hash % 100 of uniformly spread keys for ring
// hash and Maglev). Unhealthy priority-0 hosts get nothing.
func TestPrioritySpill(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			hosts := prioHosts(10)
			s, err := NewPrioritySet(p, hosts, Options{})
			if err != nil {
				t.Fatal(err)
			}
			setHealthy(hosts[:5], false)
			defer setHealthy(hosts, true)
			if got, want := s.Load(), []LevelLoad{{0, 70}, {1, 30}}; !slices.Equal(got, want) {
				t.Errorf("Load() = %v, want %v", got, want)
			}
			got := picks(t, s, picksN)
			n := 0
			for h, c := range got {
				if h.Priority() == 1 {
					n += c
				}
				if !h.Healthy() {
					t.Errorf("unhealthy %s picked %d times", h.Address, c)
				}
			}
			if d := math.Abs(float64(n) - 0.3*picksN); d > binomialBound(picksN, 0.3) {
				t.Errorf("%d of %d picks at priority 1, want %.0f ± %.0f", n, picksN, 0.3*picksN, binomialBound(picksN, 0.3))
			}
		})
	}
}

// TestPriorityTotalPanic: with no healthy host anywhere, load follows host
// counts (3 at priority 0, 1 at priority 5: 75/25) and every host is used.
func TestPriorityTotalPanic(t *testing.T) {
	hosts := mkHosts(1, 1, 1, 1)
	hosts[3].prio.Store(5)
	s, err := NewPrioritySet(Random, hosts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	setHealthy(hosts, false)
	defer setHealthy(hosts, true)
	if got, want := s.Load(), []LevelLoad{{0, 75}, {5, 25}}; !slices.Equal(got, want) {
		t.Errorf("Load() = %v, want %v", got, want)
	}
	got := picks(t, s, picksN)
	for i, h := range hosts {
		if d := math.Abs(float64(got[h]) - 0.25*picksN); d > binomialBound(picksN, 0.25) {
			t.Errorf("host %d picked %d, want %.0f ± %.0f", i, got[h], 0.25*picksN, binomialBound(picksN, 0.25))
		}
	}
}

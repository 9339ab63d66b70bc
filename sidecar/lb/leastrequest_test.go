package lb

import (
	"math"
	"testing"
)

// TestLeastRequestTwoHostsNeverBusier: with two hosts, the two choices are
// both hosts, so the busier one is never picked.
func TestLeastRequestTwoHostsNeverBusier(t *testing.T) {
	hosts := mkHosts(1, 1)
	hosts[0].Acquire()
	b := mustNew(t, LeastRequest, hosts, Options{})
	if got := picks(t, b, picksN); got[hosts[0]] != 0 {
		t.Errorf("busier host picked %d times of %d, want 0", got[hosts[0]], picksN)
	}
}

// TestLeastRequestPowerOfTwo: hosts with 0, 1, 2 and 3 requests in flight.
// Two distinct hosts of four are drawn (6 pairs) and the less loaded wins,
// so the hosts get 3/6, 2/6, 1/6 and 0 of the picks; each count is within 5
// binomial standard deviations of that, and the busiest gets none.
func TestLeastRequestPowerOfTwo(t *testing.T) {
	hosts := mkHosts(1, 1, 1, 1)
	for i, h := range hosts {
		for range i {
			h.Acquire()
		}
	}
	got := picks(t, mustNew(t, LeastRequest, hosts, Options{}), picksN)
	for i, p := range []float64{3 / 6.0, 2 / 6.0, 1 / 6.0, 0} {
		if d := math.Abs(float64(got[hosts[i]]) - p*picksN); d > binomialBound(picksN, p) {
			t.Errorf("host with %d in flight picked %d, want %.0f ± %.0f", i, got[hosts[i]], p*picksN, binomialBound(picksN, p))
		}
	}
}

// TestLeastRequestChoiceCount: comparing all 4 hosts always finds the
// idle one.
func TestLeastRequestChoiceCount(t *testing.T) {
	hosts := mkHosts(1, 1, 1, 1)
	for _, h := range hosts[1:] {
		h.Acquire()
	}
	for _, c := range []uint32{3, 4, 5} {
		got := picks(t, mustNew(t, LeastRequest, hosts, Options{ChoiceCount: c}), 10000)
		want := 10000
		if c == 3 {
			// The idle host is among 3 distinct of 4 with probability 3/4.
			want = 7500
		}
		if d := math.Abs(float64(got[hosts[0]] - want)); d > binomialBound(10000, 0.75)+1 {
			t.Errorf("choice count %d: idle host picked %d of 10000, want %d", c, got[hosts[0]], want)
		}
	}
}

// TestLeastRequestWeighted: unequal weights 1,1,2 are scheduled by
// weight/(in flight+1). Idle, the shares are 25/25/50%; with 3 requests in
// flight on the weight-2 host its effective weight is 0.5 and the shares
// become 40/40/20%. Each within 1% absolute.
func TestLeastRequestWeighted(t *testing.T) {
	hosts := mkHosts(1, 1, 2)
	b := mustNew(t, LeastRequest, hosts, Options{})
	check := func(name string, want []float64) {
		got := picks(t, b, picksN)
		for i, w := range want {
			if s := float64(got[hosts[i]]) / picksN; math.Abs(s-w) > 0.01 {
				t.Errorf("%s: host %d share %.4f, want %.2f ± 0.01", name, i, s, w)
			}
		}
	}
	check("idle", []float64{0.25, 0.25, 0.5})
	for range 3 {
		hosts[2].Acquire()
	}
	check("3 in flight on the heavy host", []float64{0.4, 0.4, 0.2})
}

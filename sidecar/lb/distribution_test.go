package lb

import (
	"math"
	"testing"
)

const picksN = 100000

// TestRoundRobinDistribution: over 100k picks each host's share is its
// weight's share within 1% absolute, on both the precomputed schedule and
// the scheduler used when the period is too long to store.
func TestRoundRobinDistribution(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []uint32
	}{
		{name: "equal", weights: []uint32{1, 1, 1, 1, 1}},
		{name: "weighted", weights: []uint32{1, 2, 3, 4}},
		{name: "common divisor", weights: []uint32{100, 300}},
		{name: "long period, scheduler", weights: []uint32{10007, 20011, 30011}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts := mkHosts(tc.weights...)
			got := picks(t, mustNew(t, RoundRobin, hosts, Options{}), picksN)
			for i, want := range share(hosts) {
				if d := math.Abs(float64(got[hosts[i]])/picksN - want); d > 0.01 {
					t.Errorf("host %d (weight %d): share %.4f, want %.4f ± 0.01", i, tc.weights[i], float64(got[hosts[i]])/picksN, want)
				}
			}
		})
	}
}

// TestRoundRobinSmooth: picks interleave rather than come in runs: in every
// window of L consecutive picks, each host's count is within 1.5 of
// L × its weight share (weights 1,2,3,4; a plain weighted round robin
// would send 4 in a row to the heaviest host, 2.4 more than its share).
func TestRoundRobinSmooth(t *testing.T) {
	hosts := mkHosts(1, 2, 3, 4)
	b := mustNew(t, RoundRobin, hosts, Options{})
	seq := make([]*Host, 1000)
	for i := range seq {
		seq[i] = b.Pick(0)
	}
	shares := share(hosts)
	for l := 1; l <= 20; l++ {
		for start := 0; start+l <= len(seq); start++ {
			count := map[*Host]int{}
			for _, h := range seq[start : start+l] {
				count[h]++
			}
			for i, h := range hosts {
				if d := math.Abs(float64(count[h]) - float64(l)*shares[i]); d >= 1.5 {
					t.Fatalf("picks %d..%d: host %d (weight %d) picked %d times, want %.1f ± 1.5", start, start+l-1, i, h.Weight(), count[h], float64(l)*shares[i])
				}
			}
		}
	}
}

// TestRandomDistribution: over 100k picks each host's count is within 5
// binomial standard deviations of weight share × 100k.
func TestRandomDistribution(t *testing.T) {
	for _, weights := range [][]uint32{{1, 1, 1, 1}, {1, 2, 3, 4}, {1, 99}} {
		hosts := mkHosts(weights...)
		got := picks(t, mustNew(t, Random, hosts, Options{}), picksN)
		for i, p := range share(hosts) {
			if d := math.Abs(float64(got[hosts[i]]) - p*picksN); d > binomialBound(picksN, p) {
				t.Errorf("weights %v: host %d picked %d, want %.0f ± %.0f", weights, i, got[hosts[i]], p*picksN, binomialBound(picksN, p))
			}
		}
	}
}

package lb

import (
	"fmt"
	"math"
	"testing"

	"github.com/cespare/xxhash/v2"
)

var policies = []Policy{RoundRobin, LeastRequest, Random, RingHash, Maglev}

// mkHosts returns one host per weight, at 10.0.0.<i+1>:8080.
func mkHosts(weights ...uint32) []*Host {
	hs := make([]*Host, len(weights))
	for i, w := range weights {
		hs[i] = NewHost(fmt.Sprintf("10.0.0.%d:8080", i+1), w, 0, "")
	}
	return hs
}

func mustNew(t testing.TB, p Policy, hosts []*Host, o Options) Balancer {
	t.Helper()
	b, err := New(p, hosts, o)
	if err != nil {
		t.Fatalf("New(%s): %v", p, err)
	}
	return b
}

// key is the i-th request hash key of a test: spread like real ones.
func key(i int) uint64 { return xxhash.Sum64String(fmt.Sprint("key-", i)) }

// picks counts n picks of b by host, with hash keys key(0..n-1).
func picks(t testing.TB, b Balancer, n int) map[*Host]int {
	t.Helper()
	got := map[*Host]int{}
	for i := range n {
		h := b.Pick(key(i))
		if h == nil {
			t.Fatalf("Pick %d returned nil", i)
		}
		got[h]++
	}
	return got
}

// binomialBound is 5 standard deviations of the count of n draws that hit
// with probability p: a correct sampler misses it about once in 1.7 million.
func binomialBound(n int, p float64) float64 {
	return 5 * math.Sqrt(float64(n)*p*(1-p))
}

// share is each host's share of the total weight.
func share(hosts []*Host) []float64 {
	var sum float64
	for _, h := range hosts {
		sum += float64(h.weight())
	}
	out := make([]float64, len(hosts))
	for i, h := range hosts {
		out[i] = float64(h.weight()) / sum
	}
	return out
}

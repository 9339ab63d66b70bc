package lb

import (
	"slices"
	"testing"
)

// BenchmarkPick: one Pick over 16 hosts, equal and unequal weights, from
// all GOMAXPROCS goroutines at once.
func BenchmarkPick(b *testing.B) {
	for _, p := range policies {
		for _, tc := range []struct {
			name    string
			weights []uint32
		}{
			{"equal", slices.Repeat([]uint32{1}, 16)},
			{"weighted", []uint32{1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8}},
			{"longperiod", []uint32{10007, 20011, 30011, 40009, 50021, 60013, 70001, 80021, 10009, 20021, 30013, 40013, 50023, 60017, 70003, 80039}},
		} {
			if tc.name == "longperiod" && p != RoundRobin {
				continue // only round robin has a second path for long periods
			}
			bal := mustNew(b, p, mkHosts(tc.weights...), Options{})
			b.Run(p.String()+"/"+tc.name, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					k := uint64(0)
					for pb.Next() {
						k += 0x9e3779b97f4a7c15
						bal.Pick(k)
					}
				})
			})
		}
	}
	hosts := mkHosts(slices.Repeat([]uint32{1}, 16)...)
	for _, h := range hosts[8:] {
		h.prio.Store(1)
	}
	s, err := NewPrioritySet(RoundRobin, hosts, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("PrioritySet/RoundRobin", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.Pick(0)
			}
		})
	})
}

// BenchmarkBuild: building a balancer over 100 hosts (an endpoint update,
// or the first Pick after a health flip).
func BenchmarkBuild(b *testing.B) {
	hosts := mkHosts(slices.Repeat([]uint32{1, 2}, 50)...)
	for _, p := range policies {
		b.Run(p.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mustNew(b, p, hosts, Options{})
			}
		})
	}
}

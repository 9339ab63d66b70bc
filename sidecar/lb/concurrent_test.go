package lb

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentPicksAcrossRebuilds (run it with -race): workers pick,
// acquire, hold and release hosts while endpoint updates rebuild the
// balancer over merged hosts and health flips. No pick comes back nil, no
// request is lost (every in-flight count returns to 0 on the hosts the
// requests started on), and a host that survives every update is the same
// *Host throughout, so its in-flight count carries over.
func TestConcurrentPicksAcrossRebuilds(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			mk := func(gen int) []*Host {
				// 10.0.0.1 survives every update; others come and go.
				hs := []*Host{NewHost("10.0.0.1:8080", uint32(1+gen%3), 0, "")}
				for i := range 4 {
					hs = append(hs, NewHost(fmt.Sprintf("10.0.%d.%d:8080", 1+(gen+i)%3, 2+i), uint32(1+i), 0, ""))
				}
				return hs
			}
			hosts := mk(0)
			survivor := hosts[0]
			var cur atomic.Pointer[Balancer]
			// A small Maglev table: this test rebuilds ~400 times.
			o := Options{TableSize: 4093}
			b := mustNew(t, p, hosts, o)
			cur.Store(&b)

			all := sync.Map{} // every *Host ever balanced over
			for _, h := range hosts {
				all.Store(h, true)
			}
			var stop atomic.Bool
			var nils, started atomic.Int64
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; !stop.Load(); i++ {
						h := (*cur.Load()).Pick(key(w*1_000_000 + i))
						if h == nil {
							nils.Add(1)
							continue
						}
						h.Acquire() // the request starts on h ...
						started.Add(1)
						for range i % 3 {
							_ = (*cur.Load()).Pick(uint64(i)) // ... while others are picked ...
						}
						h.Release() // ... and ends on h, whatever balancer is current
						runtime.Gosched()
					}
				}()
			}
			for gen := 1; gen <= 200; gen++ {
				// Let some requests start on the current balancer first.
				for at := started.Load(); started.Load() < at+20; {
					runtime.Gosched()
				}
				next := Merge(hosts, mk(gen))
				if next[0] != survivor {
					t.Fatalf("update %d: survivor is a new *Host", gen)
				}
				for _, h := range next {
					all.Store(h, true)
				}
				nb, err := New(p, next, o)
				if err != nil {
					t.Fatal(err)
				}
				cur.Store(&nb)
				hosts = next
				hosts[gen%len(hosts)].SetHealthy(gen%2 == 0)
			}
			stop.Store(true)
			wg.Wait()
			setHealthy(hosts, true)
			if nils.Load() != 0 {
				t.Errorf("%d picks returned nil", nils.Load())
			}
			all.Range(func(k, _ any) bool {
				if h := k.(*Host); h.Active() != 0 {
					t.Errorf("%s: %d requests still counted in flight", h.Address, h.Active())
				}
				return true
			})
		})
	}
}

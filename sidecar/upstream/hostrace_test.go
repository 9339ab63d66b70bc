package upstream

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// readHosts reads every field of c's hosts, as the admin dump does, until
// stop closes; it reports a weight or priority no update ever set.
func readHosts(t *testing.T, c *Cluster, stop <-chan struct{}, weights, priorities map[uint32]bool, reads *atomic.Int64) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		for _, h := range c.Hosts() {
			_ = h.Address
			_ = h.Locality()
			_ = h.Active()
			_ = h.Healthy()
			if w, p := h.Weight(), h.Priority(); !weights[w] || !priorities[p] {
				t.Errorf("host %s: weight %d priority %d, never set", h.Address, w, p)
				return
			}
		}
		reads.Add(1)
	}
}

// TestHostFieldsRaceWithMerge is the regression test (run with -race) for
// "lb.Merge writes Host.Weight/Priority while readers read them": a
// STRICT_DNS cluster refreshing every millisecond, and an EDS cluster whose
// assignments keep changing a surviving host's weight, priority and
// locality, have their hosts read (Cluster.Hosts, then every field, as the
// admin /clusters dump does) and picked with requests in flight at the same
// time. The kept host stays the same *lb.Host with its in-flight count.
func TestHostFieldsRaceWithMerge(t *testing.T) {
	b := startH1(t)
	_, port, _ := splitHostPort(b.addr)
	pb := dnsCluster(t, clusterv3.Cluster_STRICT_DNS, "localhost:"+port)
	pb.DnsLookupFamily = clusterv3.Cluster_V4_ONLY
	pb.DnsRefreshRate = durationpb.New(time.Millisecond)
	dns := mustCompile(t, pb)
	select {
	case <-dns.Warmed():
	case <-time.After(5 * time.Second):
		t.Fatal("localhost did not resolve")
	}
	eds := mustCompile(t, edsCluster("eds"))
	mk := func(i int) error {
		cla := assignment(t, "eds", "127.0.0.1:1001", "127.0.0.1:1002")
		lle := cla.Endpoints[0]
		lle.Priority = uint32(i % 2)
		lle.Locality = &corev3.Locality{Zone: []string{"a", "b", "c"}[i%3]}
		lle.LbEndpoints[0].LoadBalancingWeight = wrapU32(uint32(1 + i%5))
		return eds.SetAssignment(cla)
	}
	if err := mk(0); err != nil {
		t.Fatal(err)
	}
	kept := eds.Hosts()[0]
	kept.Acquire() // a request in flight across every update
	defer kept.Release()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for _, c := range []*Cluster{dns, eds, dns, eds} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readHosts(t, c, stop, map[uint32]bool{1: true, 2: true, 3: true, 4: true, 5: true}, map[uint32]bool{0: true, 1: true}, &reads)
		}()
	}
	wg.Add(1)
	go func() { // requests picking hosts of both clusters
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, c := range []*Cluster{dns, eds} {
				if h, err := c.Pick(nil); err == nil {
					h.Acquire()
					h.Release()
				}
			}
		}
	}()
	for i := 1; i <= 300; i++ {
		if err := mk(i); err != nil {
			t.Fatal(err)
		}
	}
	refreshes := dns.Stats().UpdateSuccess.Load()
	deadline := time.Now().Add(5 * time.Second)
	for dns.Stats().UpdateSuccess.Load() < refreshes+20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if reads.Load() == 0 {
		t.Fatal("no reader ran")
	}
	hs := eds.Hosts()
	if hs[0] != kept || kept.Active() != 1 {
		t.Errorf("kept host %p active %d, want the first host %p kept with its request in flight", hs[0], hs[0].Active(), kept)
	}
	if w, p, l := kept.Weight(), kept.Priority(), kept.Locality(); w != 1 || p != 0 || l != "/a/" {
		t.Errorf("kept host after the last update: weight %d priority %d locality %q, want 1, 0, /a/", w, p, l)
	}
}

package lb

import (
	"fmt"
	"testing"
)

// TestMaglevMatchesEnvoy: the tables Envoy's own Maglev tests expect
// (maglev_lb_test.cc, Basic and Weighted), so that a key lands on the same
// host behind skein-proxy as behind Envoy.
func TestMaglevMatchesEnvoy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []uint32 // hosts 127.0.0.1:90, :91, ...
		size    uint64
		want    []int // host index of table slot i
	}{
		{name: "Basic", weights: []uint32{1, 1, 1, 1, 1, 1}, size: 7, want: []int{2, 4, 0, 1, 5, 0, 3}},
		{name: "Weighted", weights: []uint32{1, 2}, size: 17, want: []int{1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts := make([]*Host, len(tc.weights))
			for i, w := range tc.weights {
				hosts[i] = NewHost(fmt.Sprintf("127.0.0.1:%d", 90+i), w, 0, "")
			}
			b := mustNew(t, Maglev, hosts, Options{TableSize: tc.size})
			for i := range 3 * len(tc.want) {
				if got, want := b.Pick(uint64(i)), hosts[tc.want[i%len(tc.want)]]; got != want {
					t.Errorf("hash %d: %s, want %s", i, got.Address, want.Address)
				}
			}
		})
	}
}

// TestRingHashMatchesEnvoy: the ring Envoy's own ring hash test expects
// (ring_hash_lb_test.cc, Basic: hosts 127.0.0.1:90 to :95, minimum ring
// size 12), point for point, and the picks it expects at and around them.
func TestRingHashMatchesEnvoy(t *testing.T) {
	hosts := make([]*Host, 6)
	for i := range hosts {
		hosts[i] = &Host{Address: fmt.Sprintf("127.0.0.1:%d", 90+i)}
	}
	b := mustNew(t, RingHash, hosts, Options{MinRingSize: 12}).(*ringHash)
	want := []struct {
		port int
		hash uint64
	}{
		{94, 833437586790550860}, {92, 928266305478181108}, {90, 1033482794131418490},
		{95, 3551244743356806947}, {93, 3851675632748031481}, {91, 5583722120771150861},
		{91, 6311230543546372928}, {93, 7700377290971790572}, {95, 13144177310400110813},
		{92, 13444792449719432967}, {94, 15516499411664133160}, {90, 16117243373044804889},
	}
	r := current(&b.view, b, b.set, buildRing)
	if len(r.hash) != len(want) {
		t.Fatalf("ring has %d points, want %d", len(r.hash), len(want))
	}
	for i, w := range want {
		if r.hash[i] != w.hash || r.host[i] != hosts[w.port-90] {
			t.Errorf("point %d: %s at %d, want :%d at %d", i, r.host[i].Address, r.hash[i], w.port, w.hash)
		}
	}
	for _, tc := range []struct {
		hash uint64
		want int
	}{
		{0, 4}, {^uint64(0), 4}, {3551244743356806947, 5}, {3551244743356806948, 3}, {16117243373044804880, 0},
	} {
		if got := b.Pick(tc.hash); got != hosts[tc.want] {
			t.Errorf("Pick(%d) = %s, want %s", tc.hash, got.Address, hosts[tc.want].Address)
		}
	}
}

// TestPriorityByHashMatchesEnvoy: Envoy's ring hash failover test
// (BasicFailover): priority 0 with one of its two hosts healthy gets 70%
// and priority 1 30%, and the level is chosen by hash % 100, so hash 69
// stays at priority 0 and 71 goes to priority 1.
func TestPriorityByHashMatchesEnvoy(t *testing.T) {
	hosts := []*Host{{Address: "127.0.0.1:80"}, {Address: "127.0.0.1:81"}, NewHost("127.0.0.1:82", 0, 1, "")}
	s, err := NewPrioritySet(RingHash, hosts, Options{MinRingSize: 12})
	if err != nil {
		t.Fatal(err)
	}
	hosts[1].SetHealthy(false)
	defer hosts[1].SetHealthy(true)
	if got := s.Pick(69); got != hosts[0] {
		t.Errorf("Pick(69) = %s, want 127.0.0.1:80", got.Address)
	}
	if got := s.Pick(71); got != hosts[2] {
		t.Errorf("Pick(71) = %s, want 127.0.0.1:82", got.Address)
	}
}

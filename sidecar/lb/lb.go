// Package lb picks the upstream host for each request of a cluster: round
// robin, least request, random, ring hash and Maglev, over weighted hosts,
// skipping unhealthy ones, with priority levels on top (PrioritySet). It is
// pure Go; the xDS layer maps Envoy's Cluster.lb_policy and its configs onto
// Policy and Options.
//
// Decisions, where Envoy leaves a choice or this package differs:
//
//   - A balancer is immutable apart from its schedule state: an endpoint
//     update builds a new one over Merge's hosts and swaps it in, so a
//     request in flight finishes on the balancer and *Host it started with.
//   - Health is read lazily: Host.SetHealthy bumps a process-wide epoch, and
//     a balancer rebuilds its view of the healthy hosts (ring, table,
//     schedule) on its first Pick after the epoch moved, while concurrent
//     Picks keep the previous view. A flip anywhere therefore costs each
//     balancer one rebuild when next used (Maglev: about 2 ms for 100 hosts
//     at 65537 slots).
//   - Panic mode: a balancer picks among all its hosts only when none is
//     healthy (Envoy's healthy_panic_threshold of 50% is not applied); a
//     PrioritySet with no healthy host anywhere spreads load by host count,
//     as Envoy's total panic.
//   - Ring hash and Maglev order hosts by address before building, so that
//     proxies given the same endpoints in any order agree on every key.
//     Ring hash rescales its ring to MinRingSize as Envoy (and grpc-go) do,
//     so removing one of N equal hosts also moves some of the other hosts'
//     keys: about 1.7/N of keys in all at N = 10 (TestRingHashRemoval).
//   - Least request samples ChoiceCount distinct hosts (Envoy samples with
//     replacement), so of two hosts the busier is never picked.
package lb

import (
	"errors"
	"fmt"
)

// Balancer picks a host for one request. Pick is safe for concurrent use,
// allocates nothing, and returns nil only when the balancer has no hosts.
// hash is the request's hash key (RingHash, Maglev); the other policies
// ignore it.
type Balancer interface {
	Pick(hash uint64) *Host
}

// Policy is a load-balancing algorithm, as Envoy's Cluster.LbPolicy.
type Policy int

const (
	// RoundRobin cycles through the hosts, each as often as its weight,
	// interleaved smoothly (earliest deadline first, as Envoy).
	RoundRobin Policy = iota
	// LeastRequest picks the less loaded of ChoiceCount random hosts
	// (power of two choices); with unequal weights, it is weighted round
	// robin over weight/(requests in flight + 1), as Envoy with
	// active_request_bias 1.0.
	LeastRequest
	// Random picks a host at random, in proportion to its weight.
	Random
	// RingHash is Envoy's consistent hash ring (ketama): xxHash64 of
	// "<address>_<i>" points, as many per host as its weight share of the
	// ring, and the request goes to the first point at or after its hash.
	RingHash
	// Maglev is the Maglev paper's consistent hash lookup table, weighted
	// as Envoy's.
	Maglev
)

var policyNames = [...]string{"RoundRobin", "LeastRequest", "Random", "RingHash", "Maglev"}

func (p Policy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// hashed reports whether p places requests by their hash key.
func (p Policy) hashed() bool { return p == RingHash || p == Maglev }

// Envoy's defaults and limits for the policies' options.
const (
	DefaultChoiceCount = 2
	// MaxChoiceCount bounds ChoiceCount so that sampling needs no heap.
	MaxChoiceCount      = 16
	DefaultMinRingSize  = 1024
	DefaultMaxRingSize  = 8 << 20
	MaxRingSize         = 8 << 20
	DefaultMaglevTable  = 65537
	MaxMaglevTableSize  = 5000011
	maxRoundRobinPeriod = 1 << 14
)

// Options tunes the policies; the zero value is Envoy's defaults throughout.
type Options struct {
	// ChoiceCount is how many random hosts LeastRequest compares; 0 means
	// 2. It must be 2 to MaxChoiceCount.
	ChoiceCount uint32
	// MinRingSize is RingHash's least number of ring points; 0 means 1024.
	MinRingSize uint64
	// MaxRingSize caps RingHash's ring points; 0 means 8M (8,388,608),
	// which is also its upper limit. It must not be below MinRingSize.
	MaxRingSize uint64
	// TableSize is Maglev's lookup table size; 0 means 65537. It must be a
	// prime no larger than 5,000,011, and should be well above 100 times
	// the number of hosts for even spreading.
	TableSize uint64
}

// withDefaults fills the zero fields and validates the rest.
func (o Options) withDefaults() (Options, error) {
	if o.ChoiceCount == 0 {
		o.ChoiceCount = DefaultChoiceCount
	}
	if o.ChoiceCount < 2 || o.ChoiceCount > MaxChoiceCount {
		return o, fmt.Errorf("choice count %d: want 2 to %d", o.ChoiceCount, MaxChoiceCount)
	}
	if o.MinRingSize == 0 {
		o.MinRingSize = DefaultMinRingSize
	}
	if o.MaxRingSize == 0 {
		o.MaxRingSize = DefaultMaxRingSize
	}
	if o.MaxRingSize > MaxRingSize {
		return o, fmt.Errorf("maximum ring size %d: above the limit %d", o.MaxRingSize, MaxRingSize)
	}
	if o.MinRingSize > o.MaxRingSize {
		return o, fmt.Errorf("minimum ring size %d above maximum %d", o.MinRingSize, o.MaxRingSize)
	}
	if o.TableSize == 0 {
		o.TableSize = DefaultMaglevTable
	}
	if o.TableSize > MaxMaglevTableSize || !prime(o.TableSize) {
		return o, fmt.Errorf("maglev table size %d: want a prime up to %d", o.TableSize, MaxMaglevTableSize)
	}
	return o, nil
}

// prime reports whether n is prime, by trial division (n is small).
func prime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// ErrPolicy is returned by New for a Policy it does not know.
var ErrPolicy = errors.New("unknown load-balancing policy")

// New builds a balancer of policy p over hosts, ignoring their Priority (see
// NewPrioritySet for priority levels). It reads the hosts' weights and
// addresses now; later health changes are seen by Pick. With no hosts, Pick
// returns nil.
func New(p Policy, hosts []*Host, o Options) (Balancer, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	hs := newHostSet(hosts)
	switch p {
	case RoundRobin:
		return newRoundRobin(hs), nil
	case LeastRequest:
		return newLeastRequest(hs, int(o.ChoiceCount)), nil
	case Random:
		return newRandom(hs), nil
	case RingHash:
		return newRingHash(hs, o.MinRingSize, o.MaxRingSize), nil
	case Maglev:
		return newMaglev(hs, o.TableSize), nil
	}
	return nil, fmt.Errorf("%w %d", ErrPolicy, int(p))
}

package lb

import "sync/atomic"

// healthEpoch counts health flips of every Host in the process. A balancer
// remembers the epoch its view of the healthy hosts was built at and rebuilds
// that view on the first Pick after the epoch moves, so a flip costs one
// atomic load per Pick until it happens and one rebuild after.
var healthEpoch atomic.Uint64

// Host is one upstream endpoint. Hosts are shared across balancer rebuilds:
// an endpoint update builds a new balancer over the surviving *Host pointers
// (see Merge), so in-flight counts and health carry over and requests in
// flight on the old balancer finish on it.
//
// Address, Weight, Priority and Locality are read when a balancer is built
// (New, NewPrioritySet), never by Pick: change them only through Merge, on
// the goroutine that builds balancers. The zero Host is healthy, has no
// requests in flight and weight 1.
type Host struct {
	// Address is "ip:port"; ring hash and Maglev hash it, so it places the
	// host on the ring and in the table.
	Address string
	// Weight is the load-balancing weight; 0 means 1.
	Weight uint32
	// Priority is the priority level; 0, the zero value, is the highest.
	Priority uint32
	// Locality names the host's zone; empty means unknown. Not used by
	// the balancers yet.
	Locality string

	active    atomic.Int64
	unhealthy atomic.Bool
}

// weight is Weight with 0 read as 1.
func (h *Host) weight() uint32 {
	if h.Weight == 0 {
		return 1
	}
	return h.Weight
}

// Acquire counts one more request in flight to h; call Release when it ends.
func (h *Host) Acquire() { h.active.Add(1) }

// Release counts one request to h as finished.
func (h *Host) Release() { h.active.Add(-1) }

// Active is the number of requests in flight to h.
func (h *Host) Active() int64 { return h.active.Load() }

// SetHealthy marks h healthy or not (health checks, outlier detection).
// Balancers stop picking an unhealthy host from their next Pick on, unless
// every host they balance over is unhealthy.
func (h *Host) SetHealthy(healthy bool) {
	if h.unhealthy.Swap(!healthy) != !healthy {
		healthEpoch.Add(1)
	}
}

// Healthy reports whether h may be picked; a new Host is healthy.
func (h *Host) Healthy() bool { return !h.unhealthy.Load() }

// Merge returns the host list of an endpoint update: next in its order, each
// host replaced by the old host of the same Address when there is one. A
// kept host keeps its pointer, in-flight count and health, and takes next's
// Weight, Priority and Locality; a new address gets next's *Host as it is.
// An address listed twice in next is kept once, at its first place. Build
// the new balancer over the result, then swap it in; requests in flight on
// the old balancer still Release the same *Host.
func Merge(old, next []*Host) []*Host {
	byAddr := make(map[string]*Host, len(old))
	for _, h := range old {
		if _, dup := byAddr[h.Address]; !dup {
			byAddr[h.Address] = h
		}
	}
	seen := make(map[string]bool, len(next))
	out := make([]*Host, 0, len(next))
	for _, n := range next {
		if seen[n.Address] {
			continue
		}
		seen[n.Address] = true
		h, ok := byAddr[n.Address]
		if !ok {
			out = append(out, n)
			continue
		}
		h.Weight, h.Priority, h.Locality = n.Weight, n.Priority, n.Locality
		out = append(out, h)
	}
	return out
}

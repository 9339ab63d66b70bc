package lb

import "sync/atomic"

// healthEpoch counts health flips of every Host in the process. A balancer
// remembers the epoch its view of the healthy hosts was built at and rebuilds
// that view on the first Pick after the epoch moves, so a flip costs one
// atomic load per Pick until it happens and one rebuild after.
var healthEpoch atomic.Uint64

// Host is one upstream endpoint. Hosts are shared across balancer rebuilds:
// an endpoint update builds a new balancer over the surviving *Host pointers
// (see Merge), so in-flight counts, health and the pools keyed by *Host
// carry over and requests in flight on the old balancer finish on it.
//
// Every field but Address is read and written atomically: Merge changes a
// kept host's weight, priority and locality in place (on the goroutine that
// builds the cluster's balancers) while the admin dump, health checks or a
// DNS refresh of another cluster read them, and in-flight counts keep
// moving. Balancers read weight and priority once, when they are built
// (New, NewPrioritySet), never in Pick. Address never changes once the Host
// is shared. The zero Host (or &Host{Address: a}) is healthy, has no
// requests in flight, weight 1 and priority 0; NewHost sets the rest.
type Host struct {
	// Address is "ip:port"; ring hash and Maglev hash it, so it places the
	// host on the ring and in the table. Set it before the Host is shared.
	Address string

	w         atomic.Uint32 // 0 means 1
	prio      atomic.Uint32 // 0, the zero value, is the highest
	loc       atomic.Pointer[string]
	active    atomic.Int64
	unhealthy atomic.Bool
	failed    atomic.Int64 // SetFailedUntil's time, Unix nanoseconds; 0: none
}

// SetFailedUntil marks a try on h as having just failed, so that requests
// that choose their host with the previous_hosts retry predicate avoid it
// until t (the balancers do not read it). A zero t clears the mark.
func (h *Host) SetFailedUntil(t int64) { h.failed.Store(t) }

// FailedAt reports whether h carries a failure mark at now (Unix
// nanoseconds).
func (h *Host) FailedAt(now int64) bool { return h.failed.Load() > now }

// NewHost returns a healthy host at address with a load-balancing weight
// (0 means 1), a priority level (0 is the highest) and a locality (its
// zone, "" when unknown; not used by the balancers yet).
func NewHost(address string, weight, priority uint32, locality string) *Host {
	h := &Host{Address: address}
	h.set(weight, priority, locality)
	return h
}

// set changes h's weight, priority and locality; only Merge does, for a
// host it keeps, and tests.
func (h *Host) set(weight, priority uint32, locality string) {
	h.w.Store(weight)
	h.prio.Store(priority)
	if locality == "" {
		h.loc.Store(nil)
	} else if l := h.loc.Load(); l == nil || *l != locality {
		h.loc.Store(&locality)
	}
}

// Weight is the load-balancing weight as given; 0 means 1.
func (h *Host) Weight() uint32 { return h.w.Load() }

// Priority is the priority level; 0 is the highest.
func (h *Host) Priority() uint32 { return h.prio.Load() }

// Locality names the host's zone; "" means unknown.
func (h *Host) Locality() string {
	if l := h.loc.Load(); l != nil {
		return *l
	}
	return ""
}

// weight is Weight with 0 read as 1.
func (h *Host) weight() uint32 {
	if w := h.w.Load(); w != 0 {
		return w
	}
	return 1
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
// weight, priority and locality (atomically: readers of the old host set,
// such as an admin dump, may read them meanwhile; the balancer in use keeps
// the weights it was built with); a new address gets next's *Host as it is.
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
		h.set(n.Weight(), n.Priority(), n.Locality())
		out = append(out, h)
	}
	return out
}

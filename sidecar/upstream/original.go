package upstream

import (
	"net/netip"
	"time"

	"github.com/skeinmesh/skein/sidecar/lb"
)

// DefaultCleanupInterval is Envoy's cleanup_interval default: an
// ORIGINAL_DST host unused for this long is removed, its idle connections
// closed.
const DefaultCleanupInterval = 5 * time.Second

// pickOriginal returns the host of the request's original destination,
// creating it on first use.
func (c *Cluster) pickOriginal(pc *PickContext) (*lb.Host, error) {
	if pc == nil || !pc.OriginalDst.IsValid() {
		return nil, ErrNoOriginalDst
	}
	ap := pc.OriginalDst
	if c.portOverride != 0 {
		ap = netip.AddrPortFrom(ap.Addr(), c.portOverride)
	}
	c.origMu.RLock()
	ep := c.orig[ap]
	c.origMu.RUnlock()
	if ep == nil {
		ep = c.addOriginal(ap)
	}
	ep.used.Store(true)
	return ep.host, nil
}

func (c *Cluster) addOriginal(ap netip.AddrPort) *endpoint {
	c.origMu.Lock()
	defer c.origMu.Unlock()
	if ep := c.orig[ap]; ep != nil {
		return ep
	}
	h := &lb.Host{Address: ap.String()}
	ep := newEndpoint(c, h)
	if c.origClosed {
		ep.closed = true // a pick racing Close: served, not pooled
		return ep
	}
	c.orig[ap] = ep
	c.origHosts[h] = ep
	if c.origTimer == nil {
		c.origTimer = time.AfterFunc(c.cleanup, c.sweepOriginal)
	}
	c.stats.MembershipChange.Add(1)
	return ep
}

// sweepOriginal removes the hosts not picked since the last sweep and
// with no request in flight, and reschedules itself while hosts remain.
func (c *Cluster) sweepOriginal() {
	c.origMu.Lock()
	defer c.origMu.Unlock()
	c.origTimer = nil
	if c.origClosed {
		return
	}
	for ap, ep := range c.orig {
		if ep.used.Swap(false) || ep.host.Active() > 0 {
			continue
		}
		delete(c.orig, ap)
		delete(c.origHosts, ep.host)
		ep.drain()
		c.stats.MembershipChange.Add(1)
	}
	if len(c.orig) > 0 {
		c.origTimer = time.AfterFunc(c.cleanup, c.sweepOriginal)
	}
}

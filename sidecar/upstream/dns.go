package upstream

import (
	"context"
	"net/netip"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/skeinmesh/skein/sidecar/lb"
)

// resolveLoop resolves a DNS cluster's endpoints at once and then every
// dns_refresh_rate (dns_failure_refresh_rate's base_interval after a
// failure), until stop closes. An endpoint whose lookup fails keeps the
// addresses it last resolved to.
func (c *Cluster) resolveLoop(stop chan struct{}) {
	last := make([][]netip.Addr, len(c.static))
	for {
		wait := c.dnsRefresh
		if !c.resolveOnce(stop, last) {
			wait = c.dnsFailure
		}
		t := time.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// resolveOnce looks every endpoint up and applies the result; it reports
// whether all lookups succeeded.
func (c *Cluster) resolveOnce(stop chan struct{}, last [][]netip.Addr) bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.dnsRefresh+c.connectTimeout)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	ok := true
	for i := range c.static {
		s := &c.static[i]
		if s.addr != "" { // an IP literal
			continue
		}
		addrs, err := c.resolver.LookupNetIP(ctx, c.dnsNetwork, s.host)
		if err != nil || len(addrs) == 0 {
			ok = false
			continue
		}
		last[i] = pickFamily(addrs, c.dnsFamily)
		if c.typ == LogicalDNS {
			last[i] = last[i][:1]
		}
	}
	var hosts []*lb.Host
	for i := range c.static {
		s := &c.static[i]
		if !s.healthy {
			continue
		}
		if s.addr != "" {
			hosts = append(hosts, s.newHost(s.addr))
			continue
		}
		for _, a := range last[i] {
			hosts = append(hosts, s.newHost(netip.AddrPortFrom(a.Unmap(), s.port).String()))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok || len(hosts) > 0 {
		if err := c.setHosts(hosts); err != nil {
			c.stats.UpdateRejected.Add(1)
			return false
		}
	}
	return ok
}

// pickFamily applies dns_lookup_family to the addresses of one name:
// AUTO prefers IPv6 (as Envoy), V4_PREFERRED IPv4, ALL keeps both.
func pickFamily(addrs []netip.Addr, f clusterv3.Cluster_DnsLookupFamily) []netip.Addr {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a.Unmap().Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	switch f {
	case clusterv3.Cluster_AUTO:
		if len(v6) > 0 {
			return v6
		}
		return v4
	case clusterv3.Cluster_V4_PREFERRED:
		if len(v4) > 0 {
			return v4
		}
		return v6
	}
	return addrs
}

package upstream

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/skeinmesh/skein/sidecar/lb"
)

// endpointSpec is one compiled lb_endpoint.
type endpointSpec struct {
	host     string // IP literal, or host name (DNS clusters)
	port     uint16
	addr     string // "ip:port" when host is an IP
	weight   uint32 // at least 1
	priority uint32
	locality string // "region/zone/sub_zone"
	healthy  bool   // health_status is not UNHEALTHY, DRAINING or TIMEOUT
}

// compileEndpoints validates a ClusterLoadAssignment. path prefixes the
// field paths of errors. Locality weights (load_balancing_weight of
// LocalityLbEndpoints) are accepted and not applied: hosts are balanced by
// their own weights across localities of a priority.
func compileEndpoints(cla *endpointv3.ClusterLoadAssignment, path string, hostnames bool) ([]endpointSpec, error) {
	if cla == nil {
		return nil, nil
	}
	if err := onlyFields(cla, path, "cluster_name", "endpoints", "policy"); err != nil {
		return nil, err
	}
	if p := cla.GetPolicy(); p != nil {
		pp := join(path, "policy")
		if err := onlyFields(p, pp, "overprovisioning_factor", "endpoint_stale_after"); err != nil {
			return nil, err
		}
		if f := p.GetOverprovisioningFactor(); f != nil && f.GetValue() != lb.OverprovisioningFactor {
			return nil, fmt.Errorf("%s.overprovisioning_factor: %d not supported (%d only)", pp, f.GetValue(), lb.OverprovisioningFactor)
		}
	}
	var out []endpointSpec
	for i, lle := range cla.GetEndpoints() {
		lp := join(path, "endpoints["+strconv.Itoa(i)+"]")
		if err := onlyFields(lle, lp, "locality", "metadata", "lb_endpoints", "load_balancing_weight", "priority"); err != nil {
			return nil, err
		}
		loc := lle.GetLocality()
		locality := ""
		if loc != nil {
			locality = loc.GetRegion() + "/" + loc.GetZone() + "/" + loc.GetSubZone()
		}
		for j, lbe := range lle.GetLbEndpoints() {
			ep := lp + ".lb_endpoints[" + strconv.Itoa(j) + "]"
			s, err := compileEndpoint(lbe, ep, hostnames)
			if err != nil {
				return nil, err
			}
			s.priority, s.locality = lle.GetPriority(), locality
			out = append(out, s)
		}
	}
	return out, nil
}

func compileEndpoint(lbe *endpointv3.LbEndpoint, path string, hostnames bool) (endpointSpec, error) {
	var s endpointSpec
	if err := onlyFields(lbe, path, "endpoint", "health_status", "metadata", "load_balancing_weight"); err != nil {
		return s, err
	}
	e := lbe.GetEndpoint()
	if err := onlyFields(e, path+".endpoint", "address", "hostname", "health_check_config"); err != nil {
		return s, err
	}
	ap := path + ".endpoint.address"
	a := e.GetAddress()
	if err := onlyFields(a, ap, "socket_address"); err != nil {
		return s, err
	}
	sa := a.GetSocketAddress()
	ap += ".socket_address"
	if sa == nil {
		return s, fmt.Errorf("%s: missing", ap)
	}
	if err := onlyFields(sa, ap, "protocol", "address", "port_value", "ipv4_compat"); err != nil {
		return s, err
	}
	if sa.GetProtocol() != corev3.SocketAddress_TCP {
		return s, fmt.Errorf("%s.protocol: %s not supported (TCP only)", ap, sa.GetProtocol())
	}
	if p := sa.GetPortValue(); p == 0 || p > 65535 {
		return s, fmt.Errorf("%s.port_value: %d is not a port", ap, p)
	}
	s.host, s.port = sa.GetAddress(), uint16(sa.GetPortValue())
	if ip, err := netip.ParseAddr(s.host); err == nil {
		s.addr = netip.AddrPortFrom(ip.Unmap(), s.port).String()
	} else if !hostnames {
		return s, fmt.Errorf("%s.address: %q is not an IP address", ap, s.host)
	} else if s.host == "" {
		return s, fmt.Errorf("%s.address: empty", ap)
	}
	s.weight = 1
	if w := lbe.GetLoadBalancingWeight(); w != nil {
		if w.GetValue() == 0 {
			return s, fmt.Errorf("%s.load_balancing_weight: must be at least 1", path)
		}
		s.weight = w.GetValue()
	}
	switch lbe.GetHealthStatus() {
	case corev3.HealthStatus_UNHEALTHY, corev3.HealthStatus_DRAINING, corev3.HealthStatus_TIMEOUT:
	default: // UNKNOWN, HEALTHY, DEGRADED
		s.healthy = true
	}
	return s, nil
}

// CheckAssignment validates cla as SetAssignment (of a Cluster or the
// Manager) would, without applying it anywhere, so that a set of
// assignments can be checked whole before any is applied. The error names
// the assignment and the field: `cluster load assignment "web":
// endpoints[0].lb_endpoints[1].endpoint.address.socket_address.address:
// "db" is not an IP address`. An assignment with no cluster_name is refused.
func CheckAssignment(cla *endpointv3.ClusterLoadAssignment) error {
	name := cla.GetClusterName()
	if name == "" {
		return errors.New("cluster load assignment: cluster_name: empty")
	}
	if _, err := compileEndpoints(cla, "", false); err != nil {
		return fmt.Errorf("cluster load assignment %q: %w", name, err)
	}
	return nil
}

// newHost is the host of an endpoint at address addr.
func (s *endpointSpec) newHost(addr string) *lb.Host {
	return lb.NewHost(addr, s.weight, s.priority, s.locality)
}

// SetAssignment replaces an EDS cluster's hosts with those of cla: hosts
// whose address stays keep their *lb.Host (in-flight count, health) and
// pools; endpoints UNHEALTHY, DRAINING or TIMEOUT in EDS are left out, so
// never picked; removed hosts' pools drain. The new balancer is built
// completely before it is swapped in; a request in flight keeps its host
// and connection. cla must name the cluster's EDSName; it is kept and must
// not be modified. On error nothing changes.
func (c *Cluster) SetAssignment(cla *endpointv3.ClusterLoadAssignment) error {
	if c.typ != EDS {
		return fmt.Errorf("cluster %q: %s cluster takes no ClusterLoadAssignment", c.name, c.typ)
	}
	if cla.GetClusterName() != c.edsName {
		return fmt.Errorf("cluster load assignment %q: cluster_name: cluster %q wants %q", cla.GetClusterName(), c.name, c.edsName)
	}
	specs, err := compileEndpoints(cla, "", false)
	if err != nil {
		c.stats.UpdateRejected.Add(1)
		return fmt.Errorf("cluster load assignment %q: %w", cla.GetClusterName(), err)
	}
	hosts := make([]*lb.Host, 0, len(specs))
	for i := range specs {
		if specs[i].healthy {
			hosts = append(hosts, specs[i].newHost(specs[i].addr))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.setHosts(hosts); err != nil {
		c.stats.UpdateRejected.Add(1)
		return fmt.Errorf("cluster load assignment %q: %w", cla.GetClusterName(), err)
	}
	c.lastCLA = cla
	return nil
}

// setHosts swaps in next as the host set; c.mu is held.
func (c *Cluster) setHosts(next []*lb.Host) error {
	if c.closed {
		return nil
	}
	old := c.snap.Load()
	hosts := lb.Merge(old.hosts, next)
	s := &snapshot{hosts: hosts, eps: make(map[*lb.Host]*endpoint, len(hosts))}
	if len(hosts) > 0 {
		bal, err := lb.NewPrioritySet(c.policy, hosts, c.lbOpts)
		if err != nil {
			return err
		}
		s.bal = bal
	}
	for _, h := range hosts {
		if ep := old.eps[h]; ep != nil {
			s.eps[h] = ep
		} else {
			s.eps[h] = newEndpoint(c, h)
		}
	}
	c.snap.Store(s)
	changed := len(old.hosts) != len(hosts)
	for h, ep := range old.eps {
		if s.eps[h] == nil {
			ep.drain()
			changed = true
		}
	}
	if changed || len(old.eps) == 0 {
		c.stats.MembershipChange.Add(1)
	}
	c.stats.UpdateSuccess.Add(1)
	c.markWarm()
	return nil
}

// start gives STATIC clusters their hosts, starts DNS resolution, and
// marks ORIGINAL_DST clusters warm.
func (c *Cluster) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.typ {
	case Static:
		hosts := make([]*lb.Host, 0, len(c.static))
		for i := range c.static {
			if c.static[i].healthy {
				hosts = append(hosts, c.static[i].newHost(c.static[i].addr))
			}
		}
		if err := c.setHosts(hosts); err != nil {
			panic(err) // options were validated by compileLB
		}
	case StrictDNS, LogicalDNS:
		c.stopDNS = make(chan struct{})
		go c.resolveLoop(c.stopDNS)
	case OriginalDst:
		c.markWarm()
	}
}

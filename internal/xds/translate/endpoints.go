package translate

import (
	"cmp"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/skeinmesh/skein/internal/mesh"
)

// locality is where an endpoint or a proxy runs.
type locality struct{ region, zone, subZone string }

// proxyLocality is the locality of p's pod, from the endpoint of one of the
// services of its namespace whose Pod is p.Pod; false for a proxyless client
// or a pod that no service selects.
func proxyLocality(m *mesh.Model, p mesh.Proxy) (locality, bool) {
	if p.Pod == "" {
		return locality{}, false
	}
	for _, s := range m.Services {
		if s.Namespace != p.Namespace {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Pod == p.Pod {
				return locality{e.Region, e.Zone, e.SubZone}, true
			}
		}
	}
	return locality{}, false
}

// tier is how far an endpoint's locality is from the caller's: 0 same
// zone, 1 same region, 2 elsewhere.
func (l locality) tier(e *mesh.Endpoint) uint32 {
	switch {
	case e.Region == l.region && e.Zone == l.zone:
		return 0
	case e.Region == l.region:
		return 1
	default:
		return 2
	}
}

// buildCLA is the ClusterLoadAssignment of cluster name: the ready endpoints
// of k.svc's port (of subset k.subset only, when set), grouped by locality.
//
// With the port's TrafficPolicy failover.services, the listed services'
// ready endpoints for the same port number (else the port of the same name)
// follow at lower priorities, one per service, in order: Envoy and grpc-go
// move to priority N+1 when priority N has no healthy endpoint, which is
// what an aggregate cluster would do, without one.
//
// With failover.locality and a caller locality (proxy), the target's
// endpoints get priority 0 in the caller's zone, 1 in its region and 2
// elsewhere. Priorities are then renumbered to leave no gap, as Envoy and
// grpc-go require.
func buildCLA(m *mesh.Model, name string, k claKey, proxy *locality) *endpointv3.ClusterLoadAssignment {
	spec := specOf(policyFor(k.svc, k.port.Number))
	var labels map[string]string
	if k.subset != "" {
		for _, ss := range k.svc.Subsets {
			if ss.Name == k.subset {
				labels = ss.Labels
			}
		}
	}
	var groups []epGroup
	local := proxy != nil && spec != nil && spec.Failover != nil && spec.Failover.Locality
	groups = appendEndpoints(groups, k.svc, k.port.Number, k.subset != "", labels, func(e *mesh.Endpoint) uint32 {
		if local {
			return proxy.tier(e)
		}
		return 0
	})
	if spec != nil && spec.Failover != nil {
		base := uint32(1)
		if local {
			base = 3
		}
		for i, ref := range spec.Failover.Services {
			ns := string(ref.Namespace)
			if ns == "" {
				ns = k.svc.Namespace
			}
			fs := findService(m, ns, string(ref.Name))
			if fs == nil {
				continue
			}
			fp, ok := failoverPort(fs, k.port)
			if !ok {
				continue
			}
			prio := base + uint32(i)
			groups = appendEndpoints(groups, fs, fp, false, nil, func(*mesh.Endpoint) uint32 { return prio })
		}
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: localityEndpoints(groups)}
}

// failoverPort is the port of fs that stands in for p: the same number,
// else the same name.
func failoverPort(fs *mesh.Service, p mesh.Port) (int32, bool) {
	if _, ok := findPort(fs, p.Number); ok {
		return p.Number, true
	}
	for _, fp := range fs.Ports {
		if p.Name != "" && fp.Name == p.Name {
			return fp.Number, true
		}
	}
	return 0, false
}

// epGroup is the endpoints of one priority and locality.
type epGroup struct {
	prio uint32
	loc  locality
	eps  []*endpointv3.LbEndpoint
}

// appendEndpoints adds s's ready endpoints that serve port (and carry
// labels, when subset) to groups.
func appendEndpoints(groups []epGroup, s *mesh.Service, port int32, subset bool, labels map[string]string, prio func(*mesh.Endpoint) uint32) []epGroup {
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		if !e.Ready {
			continue
		}
		target, ok := e.Ports[port]
		if !ok || target <= 0 {
			continue
		}
		if subset && !hasLabels(e.Labels, labels) {
			continue
		}
		p, loc := prio(e), locality{e.Region, e.Zone, e.SubZone}
		idx := slices.IndexFunc(groups, func(g epGroup) bool { return g.prio == p && g.loc == loc })
		if idx < 0 {
			groups = append(groups, epGroup{prio: p, loc: loc})
			idx = len(groups) - 1
		}
		groups[idx].eps = append(groups[idx].eps, lbEndpoint(e.IP, uint32(target)))
	}
	return groups
}

// hasLabels reports whether have includes every label of want.
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// localityEndpoints sorts groups by priority and locality, renumbers the
// priorities from 0 without gaps and weighs each locality by its number of
// endpoints (grpc-go ignores a locality without a weight).
func localityEndpoints(groups []epGroup) []*endpointv3.LocalityLbEndpoints {
	slices.SortFunc(groups, func(a, b epGroup) int {
		return cmp.Or(cmp.Compare(a.prio, b.prio), cmp.Compare(a.loc.region, b.loc.region),
			cmp.Compare(a.loc.zone, b.loc.zone), cmp.Compare(a.loc.subZone, b.loc.subZone))
	})
	out := make([]*endpointv3.LocalityLbEndpoints, 0, len(groups))
	var prio uint32
	for i, g := range groups {
		if i > 0 && g.prio != groups[i-1].prio {
			prio++
		}
		out = append(out, &endpointv3.LocalityLbEndpoints{
			Locality:            &corev3.Locality{Region: g.loc.region, Zone: g.loc.zone, SubZone: g.loc.subZone},
			LbEndpoints:         g.eps,
			LoadBalancingWeight: wrapperspb.UInt32(uint32(len(g.eps))),
			Priority:            prio,
		})
	}
	return out
}

// lbEndpoint is one TCP endpoint.
func lbEndpoint(ip string, port uint32) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: socketAddress(ip, port),
		}},
	}
}

// socketAddress is ip:port over TCP.
func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Protocol:      corev3.SocketAddress_TCP,
		Address:       ip,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

package translate

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/skeinmesh/skein/internal/mesh"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// Outbound is what every proxy in namespace may call: a cluster and its
// endpoints per port (and subset) of each service exported to namespace
// (and of each service a visible service's routes send to), the port route
// configurations and virtualOutbound for sidecars, and an API listener per
// HTTP/2 or gRPC port for proxyless gRPC clients. It depends only on the
// namespace, so it is computed once per namespace and shared.
func Outbound(m *mesh.Model, namespace string) *Resources {
	o := &outbound{m: m, ns: namespace, c: newCollector()}
	o.build()
	return o.c.resources()
}

// outbound builds Outbound.
type outbound struct {
	m  *mesh.Model
	ns string
	c  *collector
}

// vhostsByPort gathers the sidecar route configuration of one port.
type portRoutes struct {
	vhosts []*routev3.VirtualHost
	fault  bool
}

func (o *outbound) build() {
	allowAny := o.m.Settings.OutboundTrafficPolicy != meshconfig.OutboundRegistryOnly
	rb := routeBuilder{m: o.m, need: o.need}
	byPort := map[int32]*portRoutes{}
	type chain struct {
		ip   string
		port int32
		fc   *listenerv3.FilterChain
	}
	var chains []chain
	var deferred []func(faultByPort map[int32]bool)

	for _, s := range o.m.Services {
		if !exportedTo(s, o.ns) {
			continue
		}
		o.c.source(serviceRef(s))
		for _, port := range s.Ports {
			pol := policyFor(s, port.Number)
			o.need(s, port, "")
			for _, ss := range s.Subsets {
				o.need(s, port, ss.Name)
			}
			if !isHTTP(port) {
				clusters := o.tcpClusters(rb, s, port, pol)
				for _, ip := range s.ClusterIPs {
					chains = append(chains, chain{ip, port.Number, o.tcpChain(ip, port.Number, clusters)})
				}
				continue
			}
			routes, fault := rb.serviceRoutes(s, port, pol, false)
			pr := byPort[port.Number]
			if pr == nil {
				pr = &portRoutes{}
				byPort[port.Number] = pr
			}
			pr.vhosts = append(pr.vhosts, &routev3.VirtualHost{
				Name:    APIListenerName(s.Host, port.Number),
				Domains: virtualHostDomains(s, port.Number, o.ns),
				Routes:  routes,
			})
			pr.fault = pr.fault || fault
			for _, ip := range s.ClusterIPs {
				ip, pn := ip, port.Number
				deferred = append(deferred, func(f map[int32]bool) {
					chains = append(chains, chain{ip, pn, o.httpChain(ip, pn, f[pn])})
				})
			}
			if isHTTP2(port) {
				o.proxylessGRPC(rb, s, port, pol)
			}
		}
	}

	faultByPort := make(map[int32]bool, len(byPort))
	for n, pr := range byPort {
		faultByPort[n] = pr.fault
		slices.SortFunc(pr.vhosts, func(a, b *routev3.VirtualHost) int { return cmp.Compare(a.Name, b.Name) })
		o.c.routes = append(o.c.routes, &routev3.RouteConfiguration{
			Name:             RouteConfigName(n),
			VirtualHosts:     append(uniqueDomains(pr.vhosts), catchAllVirtualHost(allowAny)),
			ValidateClusters: wrapperspb.Bool(false),
		})
	}
	for _, d := range deferred {
		d(faultByPort)
	}
	// Stable: of two services claiming the same ClusterIP:port (two
	// MeshServices of one Service), the first in model order keeps the
	// chain; Envoy refuses a listener with two identical matches.
	slices.SortStableFunc(chains, func(a, b chain) int {
		return cmp.Or(compareIPs(a.ip, b.ip), cmp.Compare(a.port, b.port))
	})
	fcs := make([]*listenerv3.FilterChain, 0, len(chains))
	for i, ch := range chains {
		if i > 0 && ch.ip == chains[i-1].ip && ch.port == chains[i-1].port {
			continue
		}
		fcs = append(fcs, ch.fc)
	}
	def := passthroughChain(PassthroughCluster, PassthroughCluster)
	o.c.clusters[PassthroughCluster] = passthroughCluster()
	if !allowAny {
		def = passthroughChain(BlackHoleCluster, BlackHoleCluster)
		o.c.clusters[BlackHoleCluster] = blackHoleCluster()
	}
	o.c.listeners = append(o.c.listeners, captureListener(VirtualOutbound, OutboundPort, corev3.TrafficDirection_OUTBOUND, fcs, def))
}

// uniqueDomains drops from each virtual host the domains an earlier one
// already answers (Envoy refuses a route configuration with a domain twice),
// and the virtual hosts left with none. That happens only when two
// MeshServices share one Service.
func uniqueDomains(vhosts []*routev3.VirtualHost) []*routev3.VirtualHost {
	seen := map[string]bool{}
	out := vhosts[:0]
	for _, vh := range vhosts {
		kept := vh.Domains[:0]
		for _, d := range vh.Domains {
			if !seen[d] {
				seen[d] = true
				kept = append(kept, d)
			}
		}
		vh.Domains = kept
		if len(kept) > 0 {
			out = append(out, vh)
		}
	}
	return out
}

// compareIPs orders addresses numerically, falling back to text.
func compareIPs(a, b string) int {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	if errX != nil || errY != nil {
		return cmp.Compare(a, b)
	}
	return x.Compare(y)
}

// need makes sure the cluster of s's port (and subset) and its endpoints
// are emitted, and returns its name.
func (o *outbound) need(s *mesh.Service, port mesh.Port, subset string) string {
	name := OutboundClusterName(port.Number, subset, s.Host)
	if _, ok := o.c.clusters[name]; ok {
		return name
	}
	pol := policyFor(s, port.Number)
	spec := specOf(pol)
	o.c.clusters[name] = outboundCluster(name, port, spec)
	k := claKey{svc: s, port: port, subset: subset}
	o.c.endpoints[name] = buildCLA(o.m, name, k, nil)
	o.c.source(serviceRef(s))
	if pol != nil {
		o.c.source(policyRef(pol))
	}
	if spec != nil && spec.Failover != nil {
		for _, ref := range spec.Failover.Services {
			ns := string(ref.Namespace)
			if ns == "" {
				ns = s.Namespace
			}
			if fs := findService(o.m, ns, string(ref.Name)); fs != nil {
				o.c.source(serviceRef(fs))
			}
		}
		if spec.Failover.Locality {
			if o.c.localized == nil {
				o.c.localized = map[string]claKey{}
			}
			o.c.localized[name] = k
		}
	}
	return name
}

// tcpClusters is where a TCP port's connections go: the weighted backends of
// the policy's first route that has backends (route matches are HTTP and do
// not apply), else the port's cluster.
func (o *outbound) tcpClusters(rb routeBuilder, s *mesh.Service, port mesh.Port, pol *mesh.TrafficPolicy) []weighted {
	def := []weighted{{Name: OutboundClusterName(port.Number, "", s.Host), Weight: 1}}
	spec := specOf(pol)
	if spec == nil {
		return def
	}
	for i := range spec.Routes {
		if len(spec.Routes[i].Backends) == 0 {
			continue
		}
		if wc := rb.weightedClusters(s, port, spec.Routes[i].Backends); len(wc) > 0 {
			return wc
		}
		break
	}
	return def
}

// chainMatch matches connections to ip:port.
func chainMatch(ip string, port int32) *listenerv3.FilterChainMatch {
	bits := uint32(32)
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() {
		bits = 128
	}
	return &listenerv3.FilterChainMatch{
		PrefixRanges:    []*corev3.CidrRange{{AddressPrefix: ip, PrefixLen: wrapperspb.UInt32(bits)}},
		DestinationPort: wrapperspb.UInt32(uint32(port)),
	}
}

// chainName names the outbound filter chain of ip:port.
func chainName(ip string, port int32) string {
	return ip + "_" + strconv.Itoa(int(port))
}

// httpChain is an outbound HTTP filter chain: the HCM with the port's RDS
// route configuration.
func (o *outbound) httpChain(ip string, port int32, fault bool) *listenerv3.FilterChain {
	name := chainName(ip, port)
	return &listenerv3.FilterChain{
		Name:             name,
		FilterChainMatch: chainMatch(ip, port),
		Filters:          []*listenerv3.Filter{networkFilter(hcmFilter, withWebSocket(rdsHCM("outbound_"+name, RouteConfigName(port), fault)))},
	}
}

// tcpChain is an outbound TCP filter chain.
func (o *outbound) tcpChain(ip string, port int32, clusters []weighted) *listenerv3.FilterChain {
	name := chainName(ip, port)
	return &listenerv3.FilterChain{
		Name:             name,
		FilterChainMatch: chainMatch(ip, port),
		Filters:          []*listenerv3.Filter{networkFilter(tcpProxyFilter, tcpProxy("outbound_"+name, clusters))},
	}
}

// proxylessGRPC emits the API listener <host>:<port> and its route
// configuration of the same name, with one virtual host answering
// "<host>:<port>" and "<host>".
func (o *outbound) proxylessGRPC(rb routeBuilder, s *mesh.Service, port mesh.Port, pol *mesh.TrafficPolicy) {
	name := APIListenerName(s.Host, port.Number)
	routes, fault := rb.serviceRoutes(s, port, pol, true)
	o.c.routes = append(o.c.routes, &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{name, s.Host},
			Routes:  routes,
		}},
	})
	o.c.listeners = append(o.c.listeners, apiListener(name, fault))
}

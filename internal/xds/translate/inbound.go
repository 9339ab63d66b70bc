package translate

import (
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httprbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/skeinmesh/skein/internal/mesh"
)

// Inbound is what proxy p's pod serves: virtualInbound with a filter chain
// per target port of every service in p's namespace that has an endpoint
// for p's pod, each to the local application (inbound|<port>||) behind the
// RBAC filters of the authorization policies that protect it, and a default
// chain that passes anything else through. A proxyless client (no pod)
// serves nothing: its Inbound is empty.
//
// Two services whose ports share a target port on the pod share its chain:
// the first (by service name, then port) decides the protocol, and the
// authorization policies of all of them apply.
func Inbound(m *mesh.Model, p mesh.Proxy) *Resources {
	if p.Pod == "" {
		return &Resources{}
	}
	c := newCollector()
	type served struct {
		port     mesh.Port
		policies []*mesh.AuthorizationPolicy
	}
	byTarget := map[int32]*served{}
	var targets []int32
	for _, s := range m.Services {
		if s.Namespace != p.Namespace {
			continue
		}
		i := slices.IndexFunc(s.Endpoints, func(e mesh.Endpoint) bool { return e.Pod == p.Pod })
		if i < 0 {
			continue
		}
		ep := &s.Endpoints[i]
		c.source(serviceRef(s))
		for _, port := range s.Ports {
			tp, ok := ep.Ports[port.Number]
			if !ok || tp <= 0 {
				continue
			}
			sv := byTarget[tp]
			if sv == nil {
				sv = &served{port: port}
				byTarget[tp] = sv
				targets = append(targets, tp)
			}
			for _, ap := range authzFor(m, s, port.Number) {
				if !slices.Contains(sv.policies, ap) {
					sv.policies = append(sv.policies, ap)
					c.source(authzRef(ap))
				}
			}
		}
	}
	slices.Sort(targets)
	chains := make([]*listenerv3.FilterChain, 0, len(targets))
	for _, tp := range targets {
		sv := byTarget[tp]
		cluster := InboundClusterName(tp)
		c.clusters[cluster] = inboundCluster(tp, sv.port)
		tcp := !isHTTP(sv.port)
		set := authorization(m.Settings, sv.policies, tcp)
		chains = append(chains, inboundChain(tp, cluster, tcp, set))
	}
	c.clusters[PassthroughCluster] = passthroughCluster()
	def := passthroughChain(PassthroughCluster, PassthroughCluster)
	c.listeners = append(c.listeners, captureListener(VirtualInbound, InboundPort, corev3.TrafficDirection_INBOUND, chains, def))
	return c.resources()
}

// inboundChain is the chain of one target port of the pod.
func inboundChain(tp int32, cluster string, tcp bool, set rbacSet) *listenerv3.FilterChain {
	name := "inbound_" + RouteConfigName(tp)
	fc := &listenerv3.FilterChain{
		Name:             name,
		FilterChainMatch: &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(tp))},
	}
	rules := []*rbacv3.RBAC{set.audit, set.deny, set.allow}
	if tcp {
		for _, r := range rules {
			if r != nil {
				fc.Filters = append(fc.Filters, networkFilter(networkRBAC, &netrbacv3.RBAC{Rules: r, StatPrefix: name + "_rbac"}))
			}
		}
		fc.Filters = append(fc.Filters, networkFilter(tcpProxyFilter, tcpProxy(name, []weighted{{Name: cluster, Weight: 1}})))
		return fc
	}
	var rbacFilters []*hcmv3.HttpFilter
	for _, r := range rules {
		if r != nil {
			rbacFilters = append(rbacFilters, &hcmv3.HttpFilter{
				Name:       httpRBACFilter,
				ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&httprbacv3.RBAC{Rules: r})},
			})
		}
	}
	rc := &routev3.RouteConfiguration{
		Name: cluster,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    inboundVHostName,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Name:  "default",
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
					Timeout:          durationpb.New(0),
				}},
			}},
		}},
	}
	fc.Filters = []*listenerv3.Filter{networkFilter(hcmFilter, withWebSocket(inlineHCM(name, rc, httpFilters(false, rbacFilters...))))}
	return fc
}

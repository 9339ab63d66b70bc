package proxy

import (
	"cmp"
	"maps"
	"slices"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skeinmesh/skein/sidecar/admin"
	"github.com/skeinmesh/skein/sidecar/xdsclient"
)

var _ admin.Source = (*Proxy)(nil)

// SetBootstrap records the bootstrap the proxy runs, for the config dump.
func (p *Proxy) SetBootstrap(b *bootstrapv3.Bootstrap) {
	p.mu.Lock()
	p.bootstrap = b
	p.mu.Unlock()
}

// ConfigDump is the applied config as Envoy's admin.v3.ConfigDump in JSON
// (proto field names, as Envoy writes it):
// the bootstrap, then clusters, endpoints, listeners and route
// configurations, static (the bootstrap's and the capture fallback's)
// and dynamic (from xDS), each with when and in which xDS version it last
// changed (last_updated, version_info), and the version of the last CDS and
// LDS update (the dumps' own version_info).
func (p *Proxy) ConfigDump() ([]byte, error) {
	p.mu.Lock()
	dump, err := p.configDump()
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var configs []*anypb.Any
	for _, m := range dump {
		a, err := anypb.New(m)
		if err != nil {
			return nil, err
		}
		configs = append(configs, a)
	}
	return protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}.Marshal(&adminv3.ConfigDump{Configs: configs})
}

// configDump builds the dump's sections; p.mu is held.
func (p *Proxy) configDump() ([]proto.Message, error) {
	var out []proto.Message
	if p.bootstrap != nil {
		out = append(out, &adminv3.BootstrapConfigDump{Bootstrap: p.bootstrap})
	}
	static := []map[string]*resource{p.static.clusters}
	staticL := []map[string]*resource{p.static.listeners}
	if p.fallback != nil {
		static = append(static, p.fallback.clusters)
		staticL = append(staticL, p.fallback.listeners)
	}

	cd := &adminv3.ClustersConfigDump{VersionInfo: p.versions[xdsclient.ClusterType]}
	var err error
	for _, set := range static {
		each(set, func(r *resource) {
			a, aerr := anyOf(r)
			err = cmp.Or(err, aerr)
			cd.StaticClusters = append(cd.StaticClusters, &adminv3.ClustersConfigDump_StaticCluster{Cluster: a, LastUpdated: ts(r)})
		})
	}
	each(p.dynamic.clusters, func(r *resource) {
		cd.DynamicActiveClusters = append(cd.DynamicActiveClusters, &adminv3.ClustersConfigDump_DynamicCluster{VersionInfo: r.version, Cluster: r.any, LastUpdated: ts(r)})
	})
	ed := &adminv3.EndpointsConfigDump{}
	each(p.dynamic.endpoints, func(r *resource) {
		ed.DynamicEndpointConfigs = append(ed.DynamicEndpointConfigs, &adminv3.EndpointsConfigDump_DynamicEndpointConfig{VersionInfo: r.version, EndpointConfig: r.any, LastUpdated: ts(r)})
	})
	ld := &adminv3.ListenersConfigDump{VersionInfo: p.versions[xdsclient.ListenerType]}
	for _, set := range staticL {
		each(set, func(r *resource) {
			a, aerr := anyOf(r)
			err = cmp.Or(err, aerr)
			ld.StaticListeners = append(ld.StaticListeners, &adminv3.ListenersConfigDump_StaticListener{Listener: a, LastUpdated: ts(r)})
		})
	}
	for _, name := range slices.Sorted(maps.Keys(p.dynamic.listeners)) {
		r := p.dynamic.listeners[name]
		ld.DynamicListeners = append(ld.DynamicListeners, &adminv3.ListenersConfigDump_DynamicListener{
			Name:        name,
			ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{VersionInfo: r.version, Listener: r.any, LastUpdated: ts(r)},
		})
	}
	rd := &adminv3.RoutesConfigDump{}
	each(p.dynamic.routes, func(r *resource) {
		rd.DynamicRouteConfigs = append(rd.DynamicRouteConfigs, &adminv3.RoutesConfigDump_DynamicRouteConfig{VersionInfo: r.version, RouteConfig: r.any, LastUpdated: ts(r)})
	})
	return append(out, cd, ed, ld, rd), err
}

// anyOf is r's Any: as received, or made from its proto for a static one.
func anyOf(r *resource) (*anypb.Any, error) {
	if r.any != nil {
		return r.any, nil
	}
	return anypb.New(r.msg.(proto.Message))
}

func each(set map[string]*resource, f func(*resource)) {
	for _, name := range slices.Sorted(maps.Keys(set)) {
		f(set[name])
	}
}

func ts(r *resource) *timestamppb.Timestamp { return timestamppb.New(r.updated) }

// Clusters lists the applied clusters, in name order, with their hosts:
// health, requests in flight (TCP proxy connections count as requests).
// Open connections per host are not tracked yet and show as 0.
//
// Hosts' fields are atomic (endpoint updates and DNS refreshes change a
// kept host's weight and priority in place), so reading them while an
// update runs is safe; the config lock only keeps the cluster list steady.
func (p *Proxy) Clusters() []admin.ClusterStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := map[string]bool{}
	for _, set := range []map[string]*resource{p.static.clusters, p.dynamic.clusters} {
		for n := range set {
			names[n] = true
		}
	}
	if p.fallback != nil {
		for n := range p.fallback.clusters {
			names[n] = true
		}
	}
	var out []admin.ClusterStatus
	for _, name := range slices.Sorted(maps.Keys(names)) {
		c := p.clusters.Get(name)
		if c == nil {
			continue
		}
		cs := admin.ClusterStatus{Name: name}
		for _, h := range c.Hosts() {
			hs := admin.HostStatus{Address: h.Address, ActiveRequests: uint64(max(h.Active(), 0)), Weight: h.Weight(), Priority: h.Priority()}
			if !h.Healthy() {
				// Only health checking and outlier detection mark a host
				// unhealthy; EDS-unhealthy hosts are left out of the set.
				hs.HealthFlags = []string{admin.FlagFailedActiveHC}
			}
			cs.Hosts = append(cs.Hosts, hs)
		}
		out = append(out, cs)
	}
	return out
}

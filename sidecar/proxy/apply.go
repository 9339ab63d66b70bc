package proxy

import (
	"fmt"
	"maps"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skeinmesh/skein/sidecar/router"
	"github.com/skeinmesh/skein/sidecar/stats"
	"github.com/skeinmesh/skein/sidecar/upstream"
	"github.com/skeinmesh/skein/sidecar/xdsclient"
)

// Apply applies the complete current set of one xDS resource type (see the
// package doc), of no known version. On error nothing changed; the message
// names the resource and the field.
func (p *Proxy) Apply(typeURL string, resources map[string]*anypb.Any) error {
	return p.ApplyVersion(typeURL, "", resources)
}

// ApplyVersion is Apply of the set the xDS response of that version
// carried: once applied, the version is the config dump's version_info
// (of the type, and of each resource the set added or changed) and the
// type's config_version_info metric.
func (p *Proxy) ApplyVersion(typeURL, version string, resources map[string]*anypb.Any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.apply(typeURL, version, resources)
	p.stats.ConfigUpdate(typeURL, err == nil)
	if err != nil {
		p.log.Warn("config refused", "type", typeURL, "version", version, "err", err)
		p.refusedFirst(typeURL)
		return err
	}
	p.setVersion(typeURL, version)
	p.log.Info("config applied", "type", typeURL, "version", version, "resources", len(resources))
	return nil
}

// refusedFirst lets a refused first CDS or LDS update count as answered for
// readiness. The proxy keeps serving what it has (before any listeners
// arrive, the capture passthrough), the refusal reaches the operator's
// status as a NACK with its reason, and the pod is not held back from
// starting (a native sidecar gates the app) by a config it cannot apply.
// p.mu is held.
func (p *Proxy) refusedFirst(typeURL string) {
	switch typeURL {
	case xdsclient.ClusterType:
		p.cdsAnswered = true
	case xdsclient.ListenerType:
		p.ldsAnswered = true
	default:
		return
	}
	p.readinessChanged()
}

// SetVersion records that the applied set of typeURL is now version: the
// xDS client calls it when a response repeats the applied set under a new
// version. Resources keep the version they were last changed in.
func (p *Proxy) SetVersion(typeURL, version string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setVersion(typeURL, version)
}

// setVersion records typeURL's version; p.mu is held.
func (p *Proxy) setVersion(typeURL, version string) {
	p.versions[typeURL] = version
	if version != "" {
		p.stats.SetConfigVersion(typeURL, version)
	}
}

func (p *Proxy) apply(typeURL, version string, resources map[string]*anypb.Any) error {
	now := time.Now()
	switch typeURL {
	case xdsclient.ClusterType:
		set, err := decode(resources, typeURL, "cluster", now, version, func() *clusterv3.Cluster { return new(clusterv3.Cluster) })
		if err != nil {
			return err
		}
		if err := p.updateClusters(set, p.fallback); err != nil {
			return err
		}
		keepUnchanged(p.dynamic.clusters, set)
		p.dynamic.clusters = set
		p.cdsDone = true
	case xdsclient.EndpointType:
		set, err := decode(resources, typeURL, "cluster load assignment", now, version, func() *endpointv3.ClusterLoadAssignment { return new(endpointv3.ClusterLoadAssignment) })
		if err != nil {
			return err
		}
		if err := p.updateEndpoints(set); err != nil {
			return err
		}
		p.dynamic.endpoints = set
	case xdsclient.ListenerType:
		set, err := decode(resources, typeURL, "listener", now, version, func() *listenerv3.Listener { return new(listenerv3.Listener) })
		if err != nil {
			return err
		}
		for name, r := range set {
			if r.msg.(*listenerv3.Listener).GetApiListener() != nil {
				delete(set, name) // for proxyless gRPC clients, not a proxy
			}
		}
		if err := p.updateListeners(set, nil); err != nil {
			return err
		}
		keepUnchanged(p.dynamic.listeners, set)
		p.dynamic.listeners = set
		p.rdsNames = rdsNames(p.static.listeners, set)
		p.ldsDone = true
		if p.fallback != nil {
			p.fallback = nil
			p.log.Info("the control plane's listeners replace the capture fallback")
			// The fallback's cluster goes too (or gives way to CDS's).
			if err := p.updateClusters(p.dynamic.clusters, nil); err != nil {
				p.log.Warn("clusters without the fallback", "err", err)
			}
		}
	case xdsclient.RouteType:
		set, err := decode(resources, typeURL, "route configuration", now, version, func() *routev3.RouteConfiguration { return new(routev3.RouteConfiguration) })
		if err != nil {
			return err
		}
		tables, err := p.compileRoutes(set)
		if err != nil {
			return err
		}
		p.routes.Store(&tables)
		keepUnchanged(p.dynamic.routes, set)
		p.dynamic.routes = set
	default:
		return fmt.Errorf("type %s: not supported by skein-proxy", typeURL)
	}
	p.readinessChanged()
	return nil
}

// decode unmarshals every resource of a set, in name order; each is
// stamped with now and the response's version.
func decode[T proto.Message](resources map[string]*anypb.Any, typeURL, kind string, now time.Time, version string, fresh func() T) (map[string]*resource, error) {
	set := make(map[string]*resource, len(resources))
	for _, name := range slices.Sorted(maps.Keys(resources)) {
		a := resources[name]
		if a.GetTypeUrl() != typeURL {
			return nil, fmt.Errorf("%s %q: type %s in a %s response", kind, name, a.GetTypeUrl(), typeURL)
		}
		m := fresh()
		if err := a.UnmarshalTo(m); err != nil {
			return nil, fmt.Errorf("%s %q: %w", kind, name, err)
		}
		set[name] = &resource{msg: m, any: a, updated: now, version: version}
	}
	return set, nil
}

// keepUnchanged puts back in set, for the dump, the applied resource of
// every name whose proto did not change: it keeps the time and version it
// was last changed in (as Envoy's last_updated and version_info).
func keepUnchanged(prev, set map[string]*resource) {
	for name, r := range set {
		if old := prev[name]; old != nil && proto.Equal(old.msg.(proto.Message), r.msg.(proto.Message)) {
			set[name] = old
		}
	}
}

// merged lists the static resources, then the dynamic ones, then the
// fallback's that neither has, each in name order. A dynamic resource
// named as a static one is refused.
func merged[T any](kind string, static, dynamic, fallback map[string]*resource) ([]T, error) {
	var out []T
	for _, name := range slices.Sorted(maps.Keys(static)) {
		out = append(out, static[name].msg.(T))
	}
	for _, name := range slices.Sorted(maps.Keys(dynamic)) {
		if static[name] != nil {
			return nil, fmt.Errorf("%s %q: name: a static %s of that name exists (static_resources)", kind, name, kind)
		}
		out = append(out, dynamic[name].msg.(T))
	}
	for _, name := range slices.Sorted(maps.Keys(fallback)) {
		if static[name] == nil && dynamic[name] == nil {
			out = append(out, fallback[name].msg.(T))
		}
	}
	return out, nil
}

// updateClusters makes static, dynamic and fallback clusters the set.
func (p *Proxy) updateClusters(dynamic map[string]*resource, fallback *config) error {
	var fb map[string]*resource
	if fallback != nil {
		fb = fallback.clusters
	}
	all, err := merged[*clusterv3.Cluster]("cluster", p.static.clusters, dynamic, fb)
	if err != nil {
		return err
	}
	if err := p.clusters.Update(all); err != nil {
		return err
	}
	old := *p.clusterStats.Load()
	handles := make(map[string]*stats.Cluster, len(all))
	for _, c := range all {
		handles[c.GetName()] = p.stats.Cluster(c.GetName())
	}
	for name := range old {
		if handles[name] == nil {
			p.stats.ForgetCluster(name)
		}
	}
	p.clusterStats.Store(&handles)
	return nil
}

// updateListeners makes static, dynamic and fallback listeners the set.
func (p *Proxy) updateListeners(dynamic map[string]*resource, fallback *config) error {
	var fb map[string]*resource
	if fallback != nil {
		fb = fallback.listeners
	}
	all, err := merged[*listenerv3.Listener]("listener", p.static.listeners, dynamic, fb)
	if err != nil {
		return err
	}
	if err := p.listeners.Update(all); err != nil {
		return err
	}
	old := *p.listenerStats.Load()
	handles := make(map[string]*stats.Listener, len(all))
	for _, l := range all {
		handles[l.GetName()] = p.stats.Listener(l.GetName())
	}
	for name := range old {
		if handles[name] == nil {
			p.stats.ForgetListener(name)
		}
	}
	p.listenerStats.Store(&handles)
	return nil
}

// updateEndpoints checks every assignment, then gives the changed ones to
// their clusters; an assignment that left the set leaves its clusters
// without hosts, as in Envoy.
func (p *Proxy) updateEndpoints(set map[string]*resource) error {
	prev := p.dynamic.endpoints
	var changed []*endpointv3.ClusterLoadAssignment
	for _, name := range slices.Sorted(maps.Keys(set)) {
		cla := set[name].msg.(*endpointv3.ClusterLoadAssignment)
		if old := prev[name]; old != nil && proto.Equal(old.msg.(proto.Message), cla) {
			set[name] = old // unchanged: keep when it was applied
			continue
		}
		if err := upstream.CheckAssignment(cla); err != nil {
			return err
		}
		changed = append(changed, cla)
	}
	for _, cla := range changed {
		if err := p.clusters.SetAssignment(cla); err != nil {
			return err // checked above: not expected
		}
	}
	for _, name := range slices.Sorted(maps.Keys(prev)) {
		if set[name] == nil {
			if err := p.clusters.SetAssignment(&endpointv3.ClusterLoadAssignment{ClusterName: name}); err != nil {
				return err
			}
		}
	}
	return nil
}

// compileRoutes compiles every route configuration and, for those that
// ask for it (validate_clusters), checks that the clusters they name exist.
func (p *Proxy) compileRoutes(set map[string]*resource) (map[string]*router.Table, error) {
	tables := make(map[string]*router.Table, len(set))
	for _, name := range slices.Sorted(maps.Keys(set)) {
		t, err := router.Compile(set[name].msg.(*routev3.RouteConfiguration))
		if err != nil {
			return nil, err
		}
		if t.ValidateClusters {
			for i, vh := range t.VirtualHosts() {
				for j, r := range vh.Routes {
					for _, wc := range r.Clusters {
						if p.clusters.Get(wc.Name) == nil {
							return nil, fmt.Errorf("route configuration %q: virtual_hosts[%d].routes[%d]: cluster %q does not exist (validate_clusters)", name, i, j, wc.Name)
						}
					}
				}
			}
		}
		tables[name] = t
	}
	return tables, nil
}

// staticConfig indexes the bootstrap's static resources. Their Anys are
// left to the dump to make: the bootstrap holds the protos already, and a
// serialised copy of each would stay in memory for a page rarely read.
func staticConfig(ls []*listenerv3.Listener, cs []*clusterv3.Cluster) (config, error) {
	now := time.Now()
	c := config{listeners: make(map[string]*resource, len(ls)), clusters: make(map[string]*resource, len(cs))}
	for _, l := range ls {
		c.listeners[l.GetName()] = &resource{msg: l, updated: now}
	}
	for _, cl := range cs {
		c.clusters[cl.GetName()] = &resource{msg: cl, updated: now}
	}
	return c, nil
}

// rdsNames are the route configurations the listeners' HTTP connection
// managers ask RDS for.
func rdsNames(sets ...map[string]*resource) map[string]bool {
	names := map[string]bool{}
	for r := range allOf(sets) {
		l := r.msg.(*listenerv3.Listener)
		chains := l.GetFilterChains()
		if d := l.GetDefaultFilterChain(); d != nil {
			chains = append(slices.Clip(chains), d)
		}
		for _, fc := range chains {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().MessageIs(&hcm) && f.GetTypedConfig().UnmarshalTo(&hcm) == nil {
					if n := hcm.GetRds().GetRouteConfigName(); n != "" {
						names[n] = true
					}
				}
			}
		}
	}
	return names
}

func allOf(sets []map[string]*resource) func(func(*resource) bool) {
	return func(yield func(*resource) bool) {
		for _, set := range sets {
			for _, r := range set {
				if !yield(r) {
					return
				}
			}
		}
	}
}

package proxy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"slices"

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
//
// The JSON around the resources is written from the structs below rather
// than from admin.v3's messages: that package and config/tap, which it
// pulls in, are ~1.3 MB of binary and ~0.6 MB of the proxy's resident
// memory for this page alone (docs/proxy.md, "Memory"). The resources
// themselves are protojson's, and protojson reads the whole back as an
// admin.v3.ConfigDump.
func (p *Proxy) ConfigDump() ([]byte, error) {
	p.mu.Lock()
	d := p.configDump()
	p.mu.Unlock()
	var configs []any
	if d.bootstrap != nil {
		b, err := dumpJSON.Marshal(d.bootstrap)
		if err != nil {
			return nil, err
		}
		configs = append(configs, bootstrapDump{Type: adminType + "BootstrapConfigDump", Bootstrap: b})
	}
	var err error
	entry := func(r *resource) dumpEntry {
		e := dumpEntry{version: r.version}
		a, aerr := anyOf(r)
		if aerr == nil {
			e.resource, aerr = dumpJSON.Marshal(a)
		}
		if aerr == nil {
			e.updated, aerr = dumpJSON.Marshal(timestamppb.New(r.updated))
		}
		err = cmp.Or(err, aerr)
		return e
	}
	cd := clustersDump{Type: adminType + "ClustersConfigDump", VersionInfo: d.clusterVersion}
	for _, r := range d.staticClusters {
		e := entry(r)
		cd.StaticClusters = append(cd.StaticClusters, staticCluster{Cluster: e.resource, LastUpdated: e.updated})
	}
	for _, r := range d.clusters {
		e := entry(r)
		cd.DynamicActiveClusters = append(cd.DynamicActiveClusters, dynamicCluster{VersionInfo: e.version, Cluster: e.resource, LastUpdated: e.updated})
	}
	ed := endpointsDump{Type: adminType + "EndpointsConfigDump"}
	for _, r := range d.endpoints {
		e := entry(r)
		ed.DynamicEndpointConfigs = append(ed.DynamicEndpointConfigs, dynamicEndpoint{VersionInfo: e.version, EndpointConfig: e.resource, LastUpdated: e.updated})
	}
	ld := listenersDump{Type: adminType + "ListenersConfigDump", VersionInfo: d.listenerVersion}
	for _, r := range d.staticListeners {
		e := entry(r)
		ld.StaticListeners = append(ld.StaticListeners, staticListener{Listener: e.resource, LastUpdated: e.updated})
	}
	for i, r := range d.listeners {
		e := entry(r)
		ld.DynamicListeners = append(ld.DynamicListeners, dynamicListener{Name: d.listenerNames[i],
			ActiveState: listenerState{VersionInfo: e.version, Listener: e.resource, LastUpdated: e.updated}})
	}
	rd := routesDump{Type: adminType + "RoutesConfigDump"}
	for _, r := range d.routes {
		e := entry(r)
		rd.DynamicRouteConfigs = append(rd.DynamicRouteConfigs, dynamicRoute{VersionInfo: e.version, RouteConfig: e.resource, LastUpdated: e.updated})
	}
	if err != nil {
		return nil, err
	}
	configs = append(configs, cd, ed, ld, rd)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(configDumpJSON{Configs: configs}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// dumpJSON writes the resources of the dump: proto field names, as Envoy.
var dumpJSON = protojson.MarshalOptions{UseProtoNames: true}

// adminType prefixes the type URLs of the dump's sections.
const adminType = "type.googleapis.com/envoy.admin.v3."

// The sections of admin.v3.ConfigDump, each field as its proto field name,
// in field number order; zero values are left out, as protojson does.
type (
	configDumpJSON struct {
		Configs []any `json:"configs"`
	}
	bootstrapDump struct {
		Type      string          `json:"@type"`
		Bootstrap json.RawMessage `json:"bootstrap,omitempty"`
	}
	clustersDump struct {
		Type                  string           `json:"@type"`
		VersionInfo           string           `json:"version_info,omitempty"`
		StaticClusters        []staticCluster  `json:"static_clusters,omitempty"`
		DynamicActiveClusters []dynamicCluster `json:"dynamic_active_clusters,omitempty"`
	}
	staticCluster struct {
		Cluster     json.RawMessage `json:"cluster"`
		LastUpdated json.RawMessage `json:"last_updated"`
	}
	dynamicCluster struct {
		VersionInfo string          `json:"version_info,omitempty"`
		Cluster     json.RawMessage `json:"cluster"`
		LastUpdated json.RawMessage `json:"last_updated"`
	}
	endpointsDump struct {
		Type                   string            `json:"@type"`
		DynamicEndpointConfigs []dynamicEndpoint `json:"dynamic_endpoint_configs,omitempty"`
	}
	dynamicEndpoint struct {
		VersionInfo    string          `json:"version_info,omitempty"`
		EndpointConfig json.RawMessage `json:"endpoint_config"`
		LastUpdated    json.RawMessage `json:"last_updated"`
	}
	listenersDump struct {
		Type             string            `json:"@type"`
		VersionInfo      string            `json:"version_info,omitempty"`
		StaticListeners  []staticListener  `json:"static_listeners,omitempty"`
		DynamicListeners []dynamicListener `json:"dynamic_listeners,omitempty"`
	}
	staticListener struct {
		Listener    json.RawMessage `json:"listener"`
		LastUpdated json.RawMessage `json:"last_updated"`
	}
	dynamicListener struct {
		Name        string        `json:"name,omitempty"`
		ActiveState listenerState `json:"active_state"`
	}
	listenerState struct {
		VersionInfo string          `json:"version_info,omitempty"`
		Listener    json.RawMessage `json:"listener"`
		LastUpdated json.RawMessage `json:"last_updated"`
	}
	routesDump struct {
		Type                string         `json:"@type"`
		DynamicRouteConfigs []dynamicRoute `json:"dynamic_route_configs,omitempty"`
	}
	dynamicRoute struct {
		VersionInfo string          `json:"version_info,omitempty"`
		RouteConfig json.RawMessage `json:"route_config"`
		LastUpdated json.RawMessage `json:"last_updated"`
	}
)

// dumpEntry is one resource's JSON: the resource as an Any, and when and
// in which version it last changed.
type dumpEntry struct {
	version           string
	resource, updated json.RawMessage
}

// dumpSet is what the dump shows, taken under p.mu: the resources are not
// changed once applied, so they are written out after it is released.
type dumpSet struct {
	bootstrap                       *bootstrapv3.Bootstrap
	clusterVersion, listenerVersion string
	staticClusters, clusters        []*resource
	endpoints, routes               []*resource
	staticListeners, listeners      []*resource
	listenerNames                   []string
}

// configDump takes the dump's resources, each section in name order; p.mu
// is held.
func (p *Proxy) configDump() dumpSet {
	d := dumpSet{
		bootstrap:       p.bootstrap,
		clusterVersion:  p.versions[xdsclient.ClusterType],
		listenerVersion: p.versions[xdsclient.ListenerType],
	}
	static := []map[string]*resource{p.static.clusters}
	staticL := []map[string]*resource{p.static.listeners}
	if p.fallback != nil {
		static = append(static, p.fallback.clusters)
		staticL = append(staticL, p.fallback.listeners)
	}
	for _, set := range static {
		each(set, func(r *resource) { d.staticClusters = append(d.staticClusters, r) })
	}
	each(p.dynamic.clusters, func(r *resource) { d.clusters = append(d.clusters, r) })
	each(p.dynamic.endpoints, func(r *resource) { d.endpoints = append(d.endpoints, r) })
	for _, set := range staticL {
		each(set, func(r *resource) { d.staticListeners = append(d.staticListeners, r) })
	}
	for _, name := range slices.Sorted(maps.Keys(p.dynamic.listeners)) {
		d.listeners = append(d.listeners, p.dynamic.listeners[name])
		d.listenerNames = append(d.listenerNames, name)
	}
	each(p.dynamic.routes, func(r *resource) { d.routes = append(d.routes, r) })
	return d
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

package server

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// refs are the names one resource refers to.
type refs struct {
	// rds are the route configurations a listener's HTTP connection
	// managers take from RDS (in a filter chain or an API listener).
	rds []string
	// clusters are the clusters a listener's TCP proxies and inline routes,
	// or a route configuration's routes, send to.
	clusters []string
	// eds is the ClusterLoadAssignment an EDS cluster needs.
	eds string
}

// resourceRefs extracts r's references. It unmarshals the typed configs
// inside listeners, which is most of a consistency check's cost, so the
// server remembers the result per resource object (see hasher).
func resourceRefs(r types.Resource) refs {
	var out refs
	switch r := r.(type) {
	case *clusterv3.Cluster:
		if r.GetType() == clusterv3.Cluster_EDS {
			out.eds = r.GetEdsClusterConfig().GetServiceName()
			if out.eds == "" {
				out.eds = r.GetName()
			}
		}
	case *routev3.RouteConfiguration:
		out.clusters = routeClusters(out.clusters, r)
	case *listenerv3.Listener:
		chains := r.GetFilterChains()
		if dc := r.GetDefaultFilterChain(); dc != nil {
			chains = append(chains[:len(chains):len(chains)], dc)
		}
		for _, fc := range chains {
			for _, f := range fc.GetFilters() {
				out = filterRefs(out, f.GetTypedConfig())
			}
		}
		out = filterRefs(out, r.GetApiListener().GetApiListener())
	}
	return out
}

// routeClusters appends the clusters rc's routes send to.
func routeClusters(out []string, rc *routev3.RouteConfiguration) []string {
	for _, vh := range rc.GetVirtualHosts() {
		for _, rt := range vh.GetRoutes() {
			a := rt.GetRoute()
			if c := a.GetCluster(); c != "" {
				out = append(out, c)
			}
			for _, w := range a.GetWeightedClusters().GetClusters() {
				if c := w.GetName(); c != "" {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// filterRefs adds the references of a network filter's typed config.
func filterRefs(out refs, cfg *anypb.Any) refs {
	switch {
	case cfg == nil:
	case cfg.MessageIs((*tcpproxyv3.TcpProxy)(nil)):
		tp := &tcpproxyv3.TcpProxy{}
		if cfg.UnmarshalTo(tp) != nil {
			return out
		}
		if c := tp.GetCluster(); c != "" {
			out.clusters = append(out.clusters, c)
		}
		for _, w := range tp.GetWeightedClusters().GetClusters() {
			if c := w.GetName(); c != "" {
				out.clusters = append(out.clusters, c)
			}
		}
	case cfg.MessageIs((*hcmv3.HttpConnectionManager)(nil)):
		hcm := &hcmv3.HttpConnectionManager{}
		if cfg.UnmarshalTo(hcm) != nil {
			return out
		}
		if n := hcm.GetRds().GetRouteConfigName(); n != "" {
			out.rds = append(out.rds, n)
		}
		if rc := hcm.GetRouteConfig(); rc != nil {
			out.clusters = routeClusters(out.clusters, rc)
		}
	}
	return out
}

// checkReferences returns an error naming the first dangling reference in
// snap: an EDS cluster without its ClusterLoadAssignment, an RDS name a
// listener uses without its RouteConfiguration, or a cluster that a route
// or TCP proxy names and the snapshot lacks.
//
// Unlike go-control-plane's Consistent, it allows resources nothing
// references (a proxyless gRPC client subscribes to some listeners by name
// and never to the rest, whose routes are then unreferenced), follows RDS
// names inside API listeners, and checks cluster references.
func checkReferences(h *hasher, snap *cache.Snapshot) error {
	endpoints := snap.Resources[types.Endpoint].Items
	clusters := snap.Resources[types.Cluster].Items
	routes := snap.Resources[types.Route].Items
	for name, r := range clusters {
		if eds := h.refs(r.Resource).eds; eds != "" {
			if _, ok := endpoints[eds]; !ok {
				return fmt.Errorf("EDS cluster %q has no ClusterLoadAssignment %q in the snapshot", name, eds)
			}
		}
	}
	for name, r := range routes {
		for _, c := range h.refs(r.Resource).clusters {
			if _, ok := clusters[c]; !ok {
				return fmt.Errorf("route configuration %q names cluster %q, which is not in the snapshot", name, c)
			}
		}
	}
	for name, r := range snap.Resources[types.Listener].Items {
		rf := h.refs(r.Resource)
		for _, rds := range rf.rds {
			if _, ok := routes[rds]; !ok {
				return fmt.Errorf("listener %q takes route configuration %q from RDS, which is not in the snapshot", name, rds)
			}
		}
		for _, c := range rf.clusters {
			if _, ok := clusters[c]; !ok {
				return fmt.Errorf("listener %q names cluster %q, which is not in the snapshot", name, c)
			}
		}
	}
	return nil
}

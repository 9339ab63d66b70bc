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

// checkRouteAndEndpointReferences returns an error naming the first EDS
// cluster without its ClusterLoadAssignment, or the first RDS route
// configuration a listener names that the snapshot lacks. Unlike
// go-control-plane's Consistent, it allows resources nothing references (a
// proxyless gRPC client subscribes to some listeners by name and never to
// the sidecar's, whose routes are then unreferenced) and it follows RDS
// names inside API listeners, which Consistent does not.
func checkRouteAndEndpointReferences(snap *cache.Snapshot) error {
	endpoints := snap.Resources[types.Endpoint].Items
	for name, r := range snap.Resources[types.Cluster].Items {
		c, ok := r.Resource.(*clusterv3.Cluster)
		if !ok || c.GetType() != clusterv3.Cluster_EDS {
			continue
		}
		want := c.GetEdsClusterConfig().GetServiceName()
		if want == "" {
			want = name
		}
		if _, ok := endpoints[want]; !ok {
			return fmt.Errorf("EDS cluster %q has no ClusterLoadAssignment %q in the snapshot", name, want)
		}
	}
	routes := snap.Resources[types.Route].Items
	for name, r := range snap.Resources[types.Listener].Items {
		l, ok := r.Resource.(*listenerv3.Listener)
		if !ok {
			continue
		}
		for _, rds := range rdsNames(l) {
			if _, ok := routes[rds]; !ok {
				return fmt.Errorf("listener %q takes route configuration %q from RDS, which is not in the snapshot", name, rds)
			}
		}
	}
	return nil
}

// rdsNames returns the route configuration names l's HTTP connection
// managers take from RDS.
func rdsNames(l *listenerv3.Listener) []string {
	var out []string
	add := func(cfg *anypb.Any) {
		hcm := &hcmv3.HttpConnectionManager{}
		if cfg == nil || !cfg.MessageIs(hcm) || cfg.UnmarshalTo(hcm) != nil {
			return
		}
		if n := hcm.GetRds().GetRouteConfigName(); n != "" {
			out = append(out, n)
		}
	}
	chains := l.GetFilterChains()
	if dc := l.GetDefaultFilterChain(); dc != nil {
		chains = append(chains[:len(chains):len(chains)], dc)
	}
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			add(f.GetTypedConfig())
		}
	}
	add(l.GetApiListener().GetApiListener())
	return out
}

// checkClusterReferences returns an error naming the first cluster that a
// route (in a RouteConfiguration or inline in a listener's HTTP connection
// manager) or a TCP proxy names and the snapshot's clusters lack.
// go-control-plane's Consistent does not check these references.
func checkClusterReferences(snap *cache.Snapshot) error {
	clusters := snap.Resources[types.Cluster].Items
	has := func(name string) bool { _, ok := clusters[name]; return ok }
	for name, r := range snap.Resources[types.Route].Items {
		rc, ok := r.Resource.(*routev3.RouteConfiguration)
		if !ok {
			continue
		}
		if missing := missingInRoutes(rc, has); missing != "" {
			return fmt.Errorf("route configuration %q names cluster %q, which is not in the snapshot", name, missing)
		}
	}
	for name, r := range snap.Resources[types.Listener].Items {
		l, ok := r.Resource.(*listenerv3.Listener)
		if !ok {
			continue
		}
		if missing := missingInListener(l, has); missing != "" {
			return fmt.Errorf("listener %q names cluster %q, which is not in the snapshot", name, missing)
		}
	}
	return nil
}

func missingInRoutes(rc *routev3.RouteConfiguration, has func(string) bool) string {
	for _, vh := range rc.GetVirtualHosts() {
		for _, rt := range vh.GetRoutes() {
			a := rt.GetRoute()
			if c := a.GetCluster(); c != "" && !has(c) {
				return c
			}
			for _, w := range a.GetWeightedClusters().GetClusters() {
				if c := w.GetName(); c != "" && !has(c) {
					return c
				}
			}
		}
	}
	return ""
}

func missingInListener(l *listenerv3.Listener, has func(string) bool) string {
	chains := l.GetFilterChains()
	if dc := l.GetDefaultFilterChain(); dc != nil {
		chains = append(chains[:len(chains):len(chains)], dc)
	}
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			if m := missingInFilter(f.GetTypedConfig(), has); m != "" {
				return m
			}
		}
	}
	if api := l.GetApiListener().GetApiListener(); api != nil {
		return missingInFilter(api, has)
	}
	return ""
}

func missingInFilter(cfg *anypb.Any, has func(string) bool) string {
	switch {
	case cfg == nil:
	case cfg.MessageIs((*tcpproxyv3.TcpProxy)(nil)):
		tp := &tcpproxyv3.TcpProxy{}
		if cfg.UnmarshalTo(tp) != nil {
			return ""
		}
		if c := tp.GetCluster(); c != "" && !has(c) {
			return c
		}
		for _, w := range tp.GetWeightedClusters().GetClusters() {
			if c := w.GetName(); c != "" && !has(c) {
				return c
			}
		}
	case cfg.MessageIs((*hcmv3.HttpConnectionManager)(nil)):
		hcm := &hcmv3.HttpConnectionManager{}
		if cfg.UnmarshalTo(hcm) != nil {
			return ""
		}
		if rc := hcm.GetRouteConfig(); rc != nil {
			return missingInRoutes(rc, has)
		}
	}
	return ""
}

package server

import (
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

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

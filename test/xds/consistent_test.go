package xds_test

import (
	"fmt"
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// consistent checks that a snapshot is closed under references: every route
// configuration a listener names over RDS is in it and every route
// configuration in it is named, and likewise every EDS cluster's
// ClusterLoadAssignment.
//
// It is go-control-plane's Snapshot.Consistent extended to API listeners:
// Consistent (v0.14.0) reads RDS names only from filter chains, so a
// proxyless snapshot, whose listeners are API listeners, fails it with
// "mismatched route reference and resource lengths" although it is complete.
func consistent(snap *cachev3.Snapshot) error {
	routes := map[string]bool{}
	for _, res := range snap.GetResources(resourcev3.ListenerType) {
		l := res.(*listenerv3.Listener)
		if api := l.GetApiListener().GetApiListener(); api != nil {
			hcm := &hcmv3.HttpConnectionManager{}
			if err := api.UnmarshalTo(hcm); err != nil {
				return fmt.Errorf("listener %s: api_listener is not an HttpConnectionManager: %w", l.GetName(), err)
			}
			if name := hcm.GetRds().GetRouteConfigName(); name != "" {
				routes[name] = true
			}
		}
		for _, chain := range append(l.GetFilterChains(), l.GetDefaultFilterChain()) {
			for _, f := range chain.GetFilters() {
				if hcm := resourcev3.GetHTTPConnectionManager(f); hcm != nil {
					if name := hcm.GetRds().GetRouteConfigName(); name != "" {
						routes[name] = true
					}
				}
			}
		}
	}
	if err := sameNames("route configurations", routes, snap.GetResources(resourcev3.RouteType)); err != nil {
		return err
	}

	assignments := map[string]bool{}
	for _, res := range snap.GetResources(resourcev3.ClusterType) {
		c := res.(*clusterv3.Cluster)
		if c.GetType() != clusterv3.Cluster_EDS {
			continue
		}
		name := c.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = c.GetName()
		}
		assignments[name] = true
	}
	return sameNames("cluster load assignments", assignments, snap.GetResources(resourcev3.EndpointType))
}

// sameNames reports the names referenced but missing, and present but not referenced.
func sameNames[T any](what string, referenced map[string]bool, present map[string]T) error {
	var missing, unreferenced []string
	for name := range referenced {
		if _, ok := present[name]; !ok {
			missing = append(missing, name)
		}
	}
	for name := range present {
		if !referenced[name] {
			unreferenced = append(unreferenced, name)
		}
	}
	if len(missing)+len(unreferenced) == 0 {
		return nil
	}
	sort.Strings(missing)
	sort.Strings(unreferenced)
	return fmt.Errorf("%s: referenced but missing %q, present but not referenced %q", what, missing, unreferenced)
}

package main

import (
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/skeinmesh/skein/internal/xds/server/xdstest"
	"github.com/skeinmesh/skein/internal/xds/translate"
)

// retriesOf returns the retries a proxy's accepted routes give calls to s's
// HTTP port; ok is false when it has no such route.
func retriesOf(c *xdstest.Client, s service) (n uint32, ok bool) {
	a := c.Resources(resource.RouteType)[translate.RouteConfigName(httpPort)]
	rc := &routev3.RouteConfiguration{}
	if a == nil || a.UnmarshalTo(rc) != nil {
		return 0, false
	}
	name := translate.APIListenerName(s.host(), httpPort)
	for _, vh := range rc.GetVirtualHosts() {
		if vh.GetName() != name {
			continue
		}
		for _, r := range vh.GetRoutes() {
			if rp := r.GetRoute().GetRetryPolicy(); rp != nil {
				return rp.GetNumRetries().GetValue(), true
			}
		}
	}
	return 0, false
}

// endpointsOf returns how many endpoints a proxy's accepted config has for
// s's HTTP port; ok is false when it has no ClusterLoadAssignment for it.
func endpointsOf(c *xdstest.Client, s service) (n int, ok bool) {
	a := c.Resources(resource.EndpointType)[translate.OutboundClusterName(httpPort, "", s.host())]
	cla := &endpointv3.ClusterLoadAssignment{}
	if a == nil || a.UnmarshalTo(cla) != nil {
		return 0, false
	}
	for _, l := range cla.GetEndpoints() {
		n += len(l.GetLbEndpoints())
	}
	return n, true
}

package translate

import (
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// httpFilters is the HCM's HTTP filter chain: [fault], [extra...], router
// last with its typed config, as grpc-go requires.
func httpFilters(fault bool, extra ...*hcmv3.HttpFilter) []*hcmv3.HttpFilter {
	var out []*hcmv3.HttpFilter
	if fault {
		out = append(out, &hcmv3.HttpFilter{Name: faultFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultv3.HTTPFault{})}})
	}
	out = append(out, extra...)
	return append(out, &hcmv3.HttpFilter{Name: routerFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: routerAny()}})
}

// routerAny is the router's config packed once and shared (resources are
// never modified after translation).
var routerAny = sync.OnceValue(func() *anypb.Any { return mustAny(&routerv3.Router{}) })

// rdsHCM is an HTTP connection manager whose routes come by RDS over ADS.
func rdsHCM(statPrefix, routeConfig string, fault bool) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: routeConfig,
		}},
		HttpFilters: httpFilters(fault),
	}
}

// withWebSocket lets WebSocket upgrades through h, as Istio does on every
// sidecar HCM (Envoy refuses an Upgrade the HCM does not name). API
// listeners do without: gRPC does not upgrade.
func withWebSocket(h *hcmv3.HttpConnectionManager) *hcmv3.HttpConnectionManager {
	h.UpgradeConfigs = []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
	return h
}

// inlineHCM is an HTTP connection manager with its route config inline.
func inlineHCM(statPrefix string, rc *routev3.RouteConfiguration, filters []*hcmv3.HttpFilter) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix:     statPrefix,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc},
		HttpFilters:    filters,
	}
}

// networkFilter wraps a network filter's config.
func networkFilter(name string, cfg proto.Message) *listenerv3.Filter {
	return &listenerv3.Filter{Name: name, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(cfg)}}
}

// tcpProxy sends the connection to one cluster, or across weighted ones.
func tcpProxy(statPrefix string, clusters []weighted) *tcpproxyv3.TcpProxy {
	t := &tcpproxyv3.TcpProxy{StatPrefix: statPrefix}
	if len(clusters) == 1 {
		t.ClusterSpecifier = &tcpproxyv3.TcpProxy_Cluster{Cluster: clusters[0].Name}
		return t
	}
	wc := &tcpproxyv3.TcpProxy_WeightedCluster{}
	for _, c := range clusters {
		wc.Clusters = append(wc.Clusters, &tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{Name: c.Name, Weight: c.Weight})
	}
	t.ClusterSpecifier = &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: wc}
	return t
}

// passthroughChain is a filter chain that forwards a connection to cluster
// (PassthroughCluster or BlackHoleCluster) as raw TCP.
func passthroughChain(name, cluster string) *listenerv3.FilterChain {
	return &listenerv3.FilterChain{
		Name:    name,
		Filters: []*listenerv3.Filter{networkFilter(tcpProxyFilter, tcpProxy(cluster, []weighted{{Name: cluster, Weight: 1}}))},
	}
}

// captureListener is a listener on 0.0.0.0:port that takes connections
// redirected by iptables and matches them on their original destination.
func captureListener(name string, port uint32, dir corev3.TrafficDirection, chains []*listenerv3.FilterChain, def *listenerv3.FilterChain) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:               name,
		Address:            socketAddress("0.0.0.0", port),
		UseOriginalDst:     wrapperspb.Bool(true),
		TrafficDirection:   dir,
		FilterChains:       chains,
		DefaultFilterChain: def,
	}
}

// apiListener is what grpc-go's xds resolver asks for when it dials
// xds:///<name>: an API listener whose HCM names the RouteConfiguration
// <name> (RDS over ADS).
func apiListener(name string, fault bool) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name: name,
		ApiListener: &listenerv3.ApiListener{
			ApiListener: mustAny(rdsHCM(name, name, fault)),
		},
	}
}

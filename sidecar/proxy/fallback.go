package proxy

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Names of the capture listeners, the control plane's too: its LDS
// replaces the fallback's by name, on the same sockets.
const (
	VirtualOutbound = "virtualOutbound"
	VirtualInbound  = "virtualInbound"
)

// fallbackConfig is the first cut's capture passthrough as Envoy config:
// virtualOutbound and virtualInbound on 0.0.0.0 (dual-stack, as Go binds
// the IPv4 wildcard), use_original_dst, each a tcp_proxy to
// PassthroughCluster (ORIGINAL_DST), which the dialer connects from
// 127.0.0.6 on the inbound side.
func fallbackConfig(f Fallback) (config, error) {
	now := time.Now()
	c := config{listeners: map[string]*resource{}, clusters: map[string]*resource{}}
	cl := &clusterv3.Cluster{
		Name:                 PassthroughCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       durationpb.New(10 * time.Second),
	}
	a, err := anypb.New(cl)
	if err != nil {
		return c, err
	}
	c.clusters[cl.Name] = &resource{msg: cl, any: a, updated: now}
	for _, l := range []struct {
		name string
		port uint16
		dir  corev3.TrafficDirection
	}{
		{VirtualOutbound, f.OutboundPort, corev3.TrafficDirection_OUTBOUND},
		{VirtualInbound, f.InboundPort, corev3.TrafficDirection_INBOUND},
	} {
		tp, err := anypb.New(&tcpproxyv3.TcpProxy{
			StatPrefix:       PassthroughCluster,
			ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: PassthroughCluster},
		})
		if err != nil {
			return c, err
		}
		pb := &listenerv3.Listener{
			Name: l.name,
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address:       "0.0.0.0",
				PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(l.port)},
			}}},
			UseOriginalDst:   wrapperspb.Bool(true),
			TrafficDirection: l.dir,
			FilterChains: []*listenerv3.FilterChain{{
				Name: PassthroughCluster,
				Filters: []*listenerv3.Filter{{
					Name:       "envoy.filters.network.tcp_proxy",
					ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: tp},
				}},
			}},
		}
		a, err := anypb.New(pb)
		if err != nil {
			return c, err
		}
		c.listeners[l.name] = &resource{msg: pb, any: a, updated: now}
	}
	return c, nil
}

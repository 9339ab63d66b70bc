package translate

import (
	"strconv"

	"github.com/skeinmesh/skein/internal/mesh"
)

// Names of the listeners and special clusters every proxy may receive.
const (
	// VirtualOutbound is the listener that captured outbound connections reach.
	VirtualOutbound = "virtualOutbound"
	// VirtualInbound is the listener that captured inbound connections reach.
	VirtualInbound = "virtualInbound"
	// PassthroughCluster forwards a connection to its original destination.
	PassthroughCluster = "PassthroughCluster"
	// BlackHoleCluster has no endpoints: connections to it fail.
	BlackHoleCluster = "BlackHoleCluster"
	// InboundPassthroughCluster is the inbound default chain's cluster; it is
	// the same ORIGINAL_DST cluster as PassthroughCluster.
	InboundPassthroughCluster = PassthroughCluster

	// OutboundPort is the port of VirtualOutbound.
	OutboundPort = 15001
	// InboundPort is the port of VirtualInbound.
	InboundPort = 15006

	// Filter names, as Envoy and grpc-go know them.
	hcmFilter        = "envoy.filters.network.http_connection_manager"
	tcpProxyFilter   = "envoy.filters.network.tcp_proxy"
	networkRBAC      = "envoy.filters.network.rbac"
	routerFilter     = "envoy.filters.http.router"
	faultFilter      = "envoy.filters.http.fault"
	httpRBACFilter   = "envoy.filters.http.rbac"
	http2OptionsKey  = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	connectTimeoutS  = 10
	defaultRetries   = 2
	allowAnyVHost    = "allow_any"
	blockAllVHost    = "block_all"
	inboundVHostName = "inbound"
)

// OutboundClusterName is Istio's "outbound|<port>|<subset>|<host>".
func OutboundClusterName(port int32, subset, host string) string {
	return "outbound|" + strconv.Itoa(int(port)) + "|" + subset + "|" + host
}

// InboundPassthroughSource is the address inbound clusters connect to the
// app from: skein-init's rules never capture a connection from it.
const InboundPassthroughSource = "127.0.0.6"

// InboundClusterName is Istio's "inbound|<port>||", the local application's port.
func InboundClusterName(port int32) string {
	return "inbound|" + strconv.Itoa(int(port)) + "||"
}

// RouteConfigName is the RDS name of the sidecar route configuration for a
// port number: the number itself, as in Istio.
func RouteConfigName(port int32) string {
	return strconv.Itoa(int(port))
}

// APIListenerName is the listener (and route configuration) name that
// grpc-go's xds resolver asks for when it dials xds:///<host>:<port>.
func APIListenerName(host string, port int32) string {
	return host + ":" + strconv.Itoa(int(port))
}

// isHTTP reports whether a port's traffic goes through the HTTP connection
// manager. AUTO counts: the proxy detects the protocol and falls back to TCP.
func isHTTP(p mesh.Port) bool {
	switch p.Protocol {
	case "TCP":
		return false
	default:
		return true
	}
}

// isHTTP2 reports whether a port speaks HTTP/2 to its endpoints, so that the
// cluster needs HTTP/2 protocol options and grpc-go may dial it.
func isHTTP2(p mesh.Port) bool {
	return p.Protocol == "GRPC" || p.Protocol == "HTTP2"
}

package listener

import (
	"context"
	"net"
	"net/netip"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

// Type URLs of the network filters this package knows by name.
const (
	// TCPProxyType is tcp_proxy's typed_config type; its factory is built in
	// (NewTCPProxyFactory).
	TCPProxyType = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
	// HTTPConnectionManagerType is the HCM's typed_config type. Its factory
	// comes from the assembly; a chain that ends in it detects the protocol
	// first (see Detect).
	HTTPConnectionManagerType = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	// NetworkRBACType is the network RBAC filter's typed_config type: the
	// control plane puts it before tcp_proxy on inbound TCP chains. Its
	// factory comes from the assembly.
	NetworkRBACType = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
)

// ConnHandler serves one downstream connection after its filter chain was
// chosen. It owns c until it returns (the listener closes c then, if the
// handler did not). ctx ends when the proxy gives up on the connection (the
// drain deadline): a handler must then stop soon.
type ConnHandler interface {
	ServeConn(ctx context.Context, c net.Conn, info *ConnInfo)
}

// ConnHandlerFunc adapts a function to ConnHandler.
type ConnHandlerFunc func(ctx context.Context, c net.Conn, info *ConnInfo)

// ServeConn calls f.
func (f ConnHandlerFunc) ServeConn(ctx context.Context, c net.Conn, info *ConnInfo) { f(ctx, c, info) }

var _ ConnHandler = ConnHandlerFunc(nil)

// NetworkFilter is a network filter that is not the last of its chain (RBAC,
// say): it runs before the filters after it, which it receives as next, and
// may refuse the connection (close it without calling next), look at or
// wrap it, or pass it on.
type NetworkFilter interface {
	Wrap(next ConnHandler) ConnHandler
}

// Filter is one compiled network filter: exactly one of Terminal and
// Network is set. A chain is zero or more Network filters then one
// Terminal filter, as in Envoy.
type Filter struct {
	// Terminal serves the connection: tcp_proxy, the HCM.
	Terminal ConnHandler
	// Network runs before the chain's later filters.
	Network NetworkFilter
}

// FilterFactory compiles one network filter of a listener from its
// typed_config, which the factory unmarshals itself. The factory must
// refuse what it does not support; its error names fields relative to
// typed_config ("weighted_clusters.clusters[1].weight: ..."), and Compile
// prefixes the filter's path. A factory is called on the compile path and
// may allocate.
type FilterFactory func(f *listenerv3.Filter) (Filter, error)

// Protocol is what protocol detection found in a connection's first bytes.
type Protocol uint8

const (
	// ProtocolUnknown: not detected (a tcp_proxy chain), or no byte came
	// before the detection timeout (a server-speaks-first protocol).
	ProtocolUnknown Protocol = iota
	// ProtocolOther: bytes that are neither HTTP nor TLS.
	ProtocolOther
	// ProtocolHTTP1: an HTTP/1.0 or HTTP/1.1 request line.
	ProtocolHTTP1
	// ProtocolHTTP2: the HTTP/2 connection preface (prior knowledge, h2c).
	ProtocolHTTP2
	// ProtocolTLS: a TLS handshake record (a ClientHello).
	ProtocolTLS
)

var protocolNames = [...]string{"unknown", "other", "http1", "http2", "tls"}

// String returns the protocol's name for logs and stats: "unknown",
// "other", "http1", "http2" or "tls".
func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return "invalid"
}

// IsHTTP reports whether p is HTTP/1 or HTTP/2.
func (p Protocol) IsHTTP() bool { return p == ProtocolHTTP1 || p == ProtocolHTTP2 }

// ConnInfo describes a downstream connection to its handlers. The listener
// fills it in before the chain runs; handlers may read it, and must not
// keep it after ServeConn returns.
type ConnInfo struct {
	// Listener is the listener's name.
	Listener string
	// Direction is the listener's traffic_direction (UNSPECIFIED when
	// unset). A dialer uses it to tell the inbound passthrough (to the app,
	// from 127.0.0.6) from the outbound one.
	Direction corev3.TrafficDirection
	// Chain is the chosen filter chain's name ("" when it has none).
	Chain string
	// Source is the downstream peer's address.
	Source netip.AddrPort
	// Local is the address the connection arrived at.
	Local netip.AddrPort
	// Destination is where the connection was going: its original
	// destination (SO_ORIGINAL_DST) on a use_original_dst listener that
	// received it redirected, else Local. IPv4 addresses are never
	// IPv4-mapped IPv6 ones.
	Destination netip.AddrPort
	// Protocol is what detection found (HCM chains only); ProtocolUnknown
	// on chains that do not detect.
	Protocol Protocol
}

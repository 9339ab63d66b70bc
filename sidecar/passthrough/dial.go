package passthrough

import (
	"context"
	"net"
	"net/netip"
)

// inboundSource is the address the proxy's inbound passthrough connects
// from: skein-init's rules let traffic from it through to the app instead
// of capturing it again (Istio uses the same address).
var inboundSource = netip.MustParseAddr("127.0.0.6")

// DialOutbound connects to dst as it is: the proxy's own connections are
// not captured (skein-init exempts its UID and GID).
func DialOutbound(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", dst.String())
}

// DialInbound connects to the app at the port a connection into the pod
// was addressed to: at the pod's address from 127.0.0.6 for IPv4, so that
// an app bound to its pod IP only is reached too, and at ::1 for IPv6,
// which has no such spare loopback address.
func DialInbound(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	if dst.Addr().Unmap().Is4() {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: inboundSource.AsSlice()}}
		return d.DialContext(ctx, "tcp4", netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()).String())
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), dst.Port()).String())
}

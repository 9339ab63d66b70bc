//go:build !linux

package capture

import (
	"errors"
	"net"
	"net/netip"
)

// OriginalDst returns where a redirected connection was going; only Linux
// has netfilter's SO_ORIGINAL_DST.
func OriginalDst(conn *net.TCPConn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errors.New("read original destination: only supported on Linux")
}

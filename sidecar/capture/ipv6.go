package capture

import (
	"fmt"
	"net"
)

// HasGlobalIPv6 reports whether the current network namespace has a global
// (or unique local) IPv6 address on any interface: skein-init's --ipv6=auto
// then writes the IPv6 rules too, since a pod reachable over IPv6 must not
// have an uncaptured IPv6 path.
func HasGlobalIPv6() (bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, fmt.Errorf("list interface addresses: %w", err)
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.To4() == nil && ipnet.IP.IsGlobalUnicast() {
			return true, nil
		}
	}
	return false, nil
}

package capture

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// AllDestinations is the include-outbound-cidrs form that captures every
// destination, and that form's default.
const AllDestinations = "*"

// ParsePorts parses a comma-separated list of TCP ports, the form of the
// skein.io/exclude-inbound-ports and skein.io/exclude-outbound-ports
// annotations and their flags: "15090,15021". Spaces around an item, empty
// items and repeats are ignored; "" is no port.
func ParsePorts(s string) ([]uint16, error) {
	var ports []uint16
	for _, item := range items(s) {
		p, err := strconv.ParseUint(item, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("port %q in %q: want a number from 1 to 65535", item, s)
		}
		if !slices.Contains(ports, uint16(p)) {
			ports = append(ports, uint16(p))
		}
	}
	return ports, nil
}

// ParseCIDRs parses a comma-separated list of IPv4 and IPv6 CIDRs, the form
// of skein.io/exclude-outbound-cidrs: "10.0.0.0/8,fd00::/8". A bare address is
// a CIDR of that address alone, and host bits are cleared ("10.1.2.3/8" is
// 10.0.0.0/8), as iptables itself would. Spaces around an item, empty items
// and repeats are ignored; "" is no CIDR.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var cidrs []netip.Prefix
	for _, item := range items(s) {
		c, err := parseCIDR(item)
		if err != nil {
			return nil, fmt.Errorf("CIDR %q in %q: want an address or address/bits, such as 10.0.0.0/8 or fd00::/8", item, s)
		}
		if !slices.Contains(cidrs, c) {
			cidrs = append(cidrs, c)
		}
	}
	return cidrs, nil
}

// ParseIncludeCIDRs parses skein.io/include-outbound-cidrs: "*" captures every
// destination and returns nil; anything else is a list for ParseCIDRs. Istio
// reads an empty list as "capture nothing outbound"; Skein refuses it rather
// than guess, and says how to get either meaning.
func ParseIncludeCIDRs(s string) ([]netip.Prefix, error) {
	if strings.TrimSpace(s) == AllDestinations {
		return nil, nil
	}
	if len(items(s)) == 0 {
		return nil, fmt.Errorf("included CIDRs %q list none: use %q to capture every destination, or exclude 0.0.0.0/0,::/0 to capture none", s, AllDestinations)
	}
	if slices.Contains(items(s), AllDestinations) {
		return nil, fmt.Errorf("included CIDRs %q: %q must stand alone", s, AllDestinations)
	}
	return ParseCIDRs(s)
}

// items splits a comma-separated list, trimming spaces and dropping empties.
func items(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func parseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("not an address: %q", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

package capture

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Family is an IP address family: it picks iptables or ip6tables, and which
// of a Config's CIDRs apply.
type Family int

// The address families skein-init captures.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// command returns the name of f's iptables tool: iptables-restore or
// ip6tables-restore for tool "restore".
func (f Family) command(tool string) string {
	if f == IPv6 {
		return "ip6tables-" + tool
	}
	return "iptables-" + tool
}

// The chains skein-init owns, in the order iptables-save lists them.
const (
	chainInbound    = "SKEIN_INBOUND"
	chainInRedirect = "SKEIN_IN_REDIRECT"
	chainOutput     = "SKEIN_OUTPUT"
	chainRedirect   = "SKEIN_REDIRECT"
)

var chains = []string{chainInbound, chainInRedirect, chainOutput, chainRedirect}

// Rules returns the iptables-restore input that installs cfg's nat rules for
// family f: a declaration of each Skein chain (which creates it, or empties
// it under --noflush), the jumps from PREROUTING and OUTPUT, and each chain's
// rules, chain by chain in iptables-save's order and canonical form, so that
// iptables-save afterwards shows these very lines. Lines starting with # are
// comments, which iptables-restore skips.
func Rules(cfg Config, f Family) (string, error) {
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	cfg = cfg.withDefaults()
	local, passthrough := "127.0.0.1/32", "127.0.0.6/32"
	if f == IPv6 {
		local, passthrough = "::1/128", "::6/128"
	}

	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("*nat")
	for _, c := range chains {
		line(":%s - [0:0]", c)
	}
	line("-A PREROUTING -p tcp -j %s", chainInbound)
	line("-A OUTPUT -p tcp -j %s", chainOutput)

	line("# inbound: TCP goes to the inbound port, except to the proxy's own ports and excluded ports")
	for _, p := range union(proxyPorts, cfg.ExcludeInboundPorts) {
		line("-A %s -p tcp -m tcp --dport %d -j RETURN", chainInbound, p)
	}
	line("-A %s -p tcp -j %s", chainInbound, chainInRedirect)
	line("-A %s -p tcp -j REDIRECT --to-ports %d", chainInRedirect, cfg.InboundPort)

	line("# outbound: excluded ports and the proxy's inbound passthrough (from %s) go out as they are", passthrough)
	for _, p := range cfg.ExcludeOutboundPorts {
		line("-A %s -p tcp -m tcp --dport %d -j RETURN", chainOutput, p)
	}
	line("-A %s -s %s -o lo -j RETURN", chainOutput, passthrough)
	line("# the proxy calling this pod goes to the inbound side; its other traffic and the app's loopback traffic go out as they are")
	for _, owner := range []string{fmt.Sprintf("--uid-owner %d", cfg.ProxyUID), fmt.Sprintf("--gid-owner %d", cfg.ProxyGID)} {
		line("-A %s ! -d %s -o lo -p tcp -m owner %s -j %s", chainOutput, local, owner, chainInRedirect)
		line("-A %s -o lo -m owner ! %s -j RETURN", chainOutput, owner)
		line("-A %s -m owner %s -j RETURN", chainOutput, owner)
	}
	line("-A %s -d %s -j RETURN", chainOutput, local)
	include, includeAll := inFamily(cfg.IncludeOutboundCIDRs, f), len(cfg.IncludeOutboundCIDRs) == 0
	if includeAll {
		line("# excluded destinations go out as they are; every other goes to the outbound port")
	} else {
		line("# excluded destinations go out as they are; only the %d included %s CIDRs go to the outbound port", len(include), f)
	}
	for _, c := range inFamily(cfg.ExcludeOutboundCIDRs, f) {
		line("-A %s -d %s -j RETURN", chainOutput, c)
	}
	if includeAll {
		line("-A %s -j %s", chainOutput, chainRedirect)
	}
	for _, c := range include {
		line("-A %s -d %s -j %s", chainOutput, c, chainRedirect)
	}
	line("-A %s -p tcp -j REDIRECT --to-ports %d", chainRedirect, cfg.OutboundPort)
	line("COMMIT")
	return b.String(), nil
}

// union returns a followed by the items of b that a lacks.
func union(a, b []uint16) []uint16 {
	out := slices.Clone(a)
	for _, p := range b {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// inFamily returns the CIDRs of family f.
func inFamily(cidrs []netip.Prefix, f Family) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cidrs {
		if c.Addr().Is4() == (f == IPv4) {
			out = append(out, c)
		}
	}
	return out
}

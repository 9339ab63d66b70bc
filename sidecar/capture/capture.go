// Package capture sends a meshed pod's TCP traffic through its proxy: it
// writes the nat-table rules that skein-init installs in the pod's network
// namespace, and reads a captured connection's original destination for the
// proxy.
//
// The rules mirror Istio's istio-iptables in REDIRECT mode, with Skein's chain
// names: PREROUTING jumps to SKEIN_INBOUND, which sends inbound TCP to
// SKEIN_IN_REDIRECT (REDIRECT to the inbound port); OUTPUT jumps to
// SKEIN_OUTPUT, which sends outbound TCP to SKEIN_REDIRECT (REDIRECT to the
// outbound port). Never captured: the proxy's own connections (its UID or
// GID), loopback traffic of the app, the proxy's own ports inbound, and what
// the Config excludes. Two contracts with the proxy follow Istio's:
//
//   - a connection the proxy (UID 7117) makes to the pod's own address over
//     loopback is sent to the inbound port, so that calling one's own Service
//     still passes the inbound side;
//   - the proxy's inbound passthrough to the app therefore connects either to
//     127.0.0.1 (or ::1) or from source 127.0.0.6 (or ::6), which is never
//     captured.
//
// UDP, and so DNS over UDP, is not captured.
package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Defaults, from ARCHITECTURE.md's conventions.
const (
	DefaultProxyUID     = 7117
	DefaultProxyGID     = 7117
	DefaultInboundPort  = 15006
	DefaultOutboundPort = 15001
)

// proxyPorts are the proxy's own listening ports (admin, health and probes,
// Istio's health port that users' probes expect, Prometheus metrics): inbound
// connections to them always reach the proxy itself, whatever the Config says.
var proxyPorts = []uint16{15000, 15020, 15021, 15090}

// ProxyPorts returns the ports that are never captured inbound because the
// proxy itself serves them.
func ProxyPorts() []uint16 { return append([]uint16(nil), proxyPorts...) }

// Config is what skein-init captures. The zero value is Istio's default
// capture with Skein's ports and UID: every inbound and outbound TCP
// connection except the proxy's own, IPv4 only.
type Config struct {
	// ProxyUID is the UID the proxy runs as; its connections are never captured
	// outbound. Zero means DefaultProxyUID (root is never exempted by accident).
	ProxyUID uint32
	// ProxyGID is the GID the proxy runs as, exempted like ProxyUID. Zero means
	// DefaultProxyGID.
	ProxyGID uint32
	// InboundPort is the proxy's port that inbound TCP is redirected to. Zero
	// means DefaultInboundPort (15006).
	InboundPort uint16
	// OutboundPort is the proxy's port that outbound TCP is redirected to. Zero
	// means DefaultOutboundPort (15001).
	OutboundPort uint16
	// ExcludeInboundPorts are destination ports whose inbound connections go
	// straight to the app (annotation skein.io/exclude-inbound-ports), besides
	// ProxyPorts, which are always excluded. Nil excludes no other port.
	ExcludeInboundPorts []uint16
	// ExcludeOutboundPorts are destination ports whose outbound connections go
	// straight out (skein.io/exclude-outbound-ports). Nil excludes none.
	ExcludeOutboundPorts []uint16
	// ExcludeOutboundCIDRs are destinations reached directly, never captured,
	// whatever IncludeOutboundCIDRs says (skein.io/exclude-outbound-cidrs). Nil
	// excludes none.
	ExcludeOutboundCIDRs []netip.Prefix
	// IncludeOutboundCIDRs, when not empty, limits outbound capture to these
	// destinations (skein.io/include-outbound-cidrs); an address family with no
	// CIDR listed is then not captured outbound at all, as in Istio. Empty (the
	// annotation's "*") captures every destination.
	IncludeOutboundCIDRs []netip.Prefix
	// IPv6 also writes the rules for IPv6 with ip6tables. False (the zero value)
	// leaves the IPv6 nat table alone.
	IPv6 bool
}

// withDefaults returns cfg with each zero field that has a default set to it.
func (cfg Config) withDefaults() Config {
	if cfg.ProxyUID == 0 {
		cfg.ProxyUID = DefaultProxyUID
	}
	if cfg.ProxyGID == 0 {
		cfg.ProxyGID = DefaultProxyGID
	}
	if cfg.InboundPort == 0 {
		cfg.InboundPort = DefaultInboundPort
	}
	if cfg.OutboundPort == 0 {
		cfg.OutboundPort = DefaultOutboundPort
	}
	return cfg
}

// Validate reports the first thing in cfg that no rule can express.
func (cfg Config) Validate() error {
	cfg = cfg.withDefaults()
	if cfg.InboundPort == cfg.OutboundPort {
		return fmt.Errorf("inbound port and outbound port are both %d", cfg.InboundPort)
	}
	if slices.Contains(cfg.ExcludeInboundPorts, 0) {
		return errors.New("excluded inbound port 0 is not a port")
	}
	if slices.Contains(cfg.ExcludeOutboundPorts, 0) {
		return errors.New("excluded outbound port 0 is not a port")
	}
	for _, c := range cfg.ExcludeOutboundCIDRs {
		if !c.IsValid() {
			return fmt.Errorf("excluded outbound CIDR %s is not valid", c)
		}
	}
	for _, c := range cfg.IncludeOutboundCIDRs {
		if !c.IsValid() {
			return fmt.Errorf("included outbound CIDR %s is not valid", c)
		}
	}
	return nil
}

package listener

import (
	"net/netip"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

func netipAddrPort(t tb, ip string, p uint32) netip.AddrPort {
	t.Helper()
	a, err := netip.ParseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(a, uint16(p))
}

// TestChainSelection pins Envoy's precedence: destination port first, then
// the longest destination prefix, then source criteria; no backtracking to
// a less specific chain; the default chain when nothing matches.
func TestChainSelection(t *testing.T) {
	ranges := func(ps ...string) []*corev3.CidrRange {
		var out []*corev3.CidrRange
		for _, p := range ps {
			out = append(out, cidr(p))
		}
		return out
	}
	l := &listenerv3.Listener{
		Name:    "virtualOutbound",
		Address: socketAddr("0.0.0.0", 15001),
		FilterChains: []*listenerv3.FilterChain{
			chain("port80", &listenerv3.FilterChainMatch{DestinationPort: port(80)}, answer(t, "x")),
			chain("ip-10.0.0.1", &listenerv3.FilterChainMatch{PrefixRanges: ranges("10.0.0.1/32", "192.0.2.1/32")}, answer(t, "x")),
			chain("443-wide", &listenerv3.FilterChainMatch{DestinationPort: port(443), PrefixRanges: ranges("10.0.0.0/8")}, answer(t, "x")),
			chain("443-narrow", &listenerv3.FilterChainMatch{DestinationPort: port(443), PrefixRanges: ranges("10.1.0.0/16", "172.16.0.0/12")}, answer(t, "x")),
			chain("9000-src-port", &listenerv3.FilterChainMatch{DestinationPort: port(9000), PrefixRanges: ranges("10.0.0.0/8"), SourcePorts: []uint32{1234, 1235}}, answer(t, "x")),
			chain("9000", &listenerv3.FilterChainMatch{DestinationPort: port(9000)}, answer(t, "x")),
			chain("v6-64", &listenerv3.FilterChainMatch{DestinationPort: port(8080), PrefixRanges: ranges("fd00::/64")}, answer(t, "x")),
			chain("v6-128", &listenerv3.FilterChainMatch{DestinationPort: port(8080), PrefixRanges: ranges("fd00::1/128")}, answer(t, "x")),
			chain("7000-local", &listenerv3.FilterChainMatch{DestinationPort: port(7000), SourceType: listenerv3.FilterChainMatch_SAME_IP_OR_LOOPBACK}, answer(t, "x")),
			chain("7000", &listenerv3.FilterChainMatch{DestinationPort: port(7000)}, answer(t, "x")),
			chain("7100-lan", &listenerv3.FilterChainMatch{DestinationPort: port(7100), SourcePrefixRanges: ranges("192.168.0.0/16")}, answer(t, "x")),
			chain("7100-external", &listenerv3.FilterChainMatch{DestinationPort: port(7100), SourceType: listenerv3.FilterChainMatch_EXTERNAL}, answer(t, "x")),
		},
		DefaultFilterChain: chain("default", nil, answer(t, "x")),
	}
	c, err := Compile(l, testFilters(&testDialer{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		src, dst string // ip:port
		want     string // chain name
	}{
		{"a port beats an address", "10.9.0.1:40000", "10.0.0.1:80", "port80"},
		{"the address when no chain has the port", "10.9.0.1:40000", "10.0.0.1:81", "ip-10.0.0.1"},
		{"nothing matches: default", "10.9.0.1:40000", "10.0.0.2:81", "default"},
		{"longest prefix wins", "10.9.0.1:40000", "10.1.2.3:443", "443-narrow"},
		{"the wider prefix for other addresses", "10.9.0.1:40000", "10.2.0.1:443", "443-wide"},
		{"the second range of a chain", "10.9.0.1:40000", "172.20.0.1:443", "443-narrow"},
		{"a port-less chain's address on port 81", "10.9.0.1:40000", "192.0.2.1:81", "ip-10.0.0.1"},
		{"port 443 outside its chains' prefixes: default, no fallback to the port-less chain", "10.9.0.1:40000", "192.0.2.1:443", "default"},
		{"source port matches", "10.9.0.1:1235", "10.0.0.7:9000", "9000-src-port"},
		{"source port fails after the longer prefix won: default, not the port-only chain", "10.9.0.1:5555", "10.0.0.7:9000", "default"},
		{"port-only chain outside the prefix", "10.9.0.1:5555", "11.0.0.7:9000", "9000"},
		{"IPv6 longest prefix", "[fd00::9]:40000", "[fd00::1]:8080", "v6-128"},
		{"IPv6 wider prefix", "[fd00::9]:40000", "[fd00::2]:8080", "v6-64"},
		{"IPv6 port-less default", "[fd00::9]:40000", "[fd01::1]:8080", "default"},
		{"IPv4-mapped destination is IPv4", "10.9.0.1:40000", "[::ffff:10.0.0.1]:81", "ip-10.0.0.1"},
		{"IPv6 port chain without prefix", "[fd00::9]:40000", "[fd01::1]:80", "port80"},
		{"loopback source is local", "127.0.0.1:40000", "10.0.0.9:7000", "7000-local"},
		{"same-IP source is local", "10.0.0.9:40000", "10.0.0.9:7000", "7000-local"},
		{"other sources: ANY", "10.9.0.1:40000", "10.0.0.9:7000", "7000"},
		{"source type before source prefix: external wins", "192.168.1.1:40000", "10.0.0.9:7100", "7100-external"},
		{"local source: the source prefix chain is ANY-typed", "127.0.0.1:40000", "10.0.0.9:7100", "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := c.Match(netip.MustParseAddrPort(tc.src), netip.MustParseAddrPort(tc.dst))
			name := "<nil>"
			if got != nil {
				name = got.Name
			}
			if name != tc.want {
				t.Errorf("%s -> %s: chain %s, want %s", tc.src, tc.dst, name, tc.want)
			}
		})
	}

	// No default chain: nil.
	l.DefaultFilterChain = nil
	if c, err = Compile(l, testFilters(&testDialer{})); err != nil {
		t.Fatal(err)
	}
	if got := c.Match(netip.MustParseAddrPort("10.9.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:81")); got != nil {
		t.Errorf("no chain and no default chain: got %q", got.Name)
	}
	src, dst := netip.MustParseAddrPort("10.9.0.1:1234"), netip.MustParseAddrPort("10.0.0.7:9000")
	if n := testing.AllocsPerRun(100, func() { c.Match(src, dst) }); n != 0 {
		t.Errorf("Match allocates %v times per connection", n)
	}
}

func BenchmarkMatchThousandServices(b *testing.B) {
	l := &listenerv3.Listener{Name: "virtualOutbound", Address: socketAddr("0.0.0.0", 15001),
		DefaultFilterChain: chain("default", nil, answer(b, "x"))}
	for i := range 1000 {
		ip := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
		l.FilterChains = append(l.FilterChains, chain(ip.String(), &listenerv3.FilterChainMatch{DestinationPort: port(80),
			PrefixRanges: []*corev3.CidrRange{cidr(ip.String() + "/32")}}, answer(b, "x")))
	}
	c, err := Compile(l, testFilters(&testDialer{}))
	if err != nil {
		b.Fatal(err)
	}
	src, dst := netip.MustParseAddrPort("10.1.0.5:40000"), netip.MustParseAddrPort("10.96.3.7:80")
	b.ReportAllocs()
	for b.Loop() {
		if c.Match(src, dst) == nil {
			b.Fatal("no chain")
		}
	}
}

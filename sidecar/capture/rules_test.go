package capture

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRulesGolden pins the iptables-restore input for each kind of Config.
// REFRESH_GOLDEN=1 go test ./sidecar/capture/ rewrites testdata/*.golden.
func TestRulesGolden(t *testing.T) {
	cidrs := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, c := range s {
			out = append(out, netip.MustParsePrefix(c))
		}
		return out
	}
	tests := []struct {
		name   string // and testdata/<name>.golden
		cfg    Config
		family Family
	}{
		{name: "default", family: IPv4},
		{name: "default-ipv6", family: IPv6, cfg: Config{IPv6: true}},
		{name: "exclude-inbound-ports", family: IPv4, cfg: Config{ExcludeInboundPorts: []uint16{8081, 15020, 9090}}},
		{name: "exclude-outbound-ports", family: IPv4, cfg: Config{ExcludeOutboundPorts: []uint16{5432, 6379}}},
		{name: "exclude-outbound-cidrs", family: IPv4, cfg: Config{ExcludeOutboundCIDRs: cidrs("10.96.0.0/12", "fd00::/8", "169.254.169.254/32")}},
		{name: "exclude-outbound-cidrs-ipv6", family: IPv6, cfg: Config{IPv6: true, ExcludeOutboundCIDRs: cidrs("10.96.0.0/12", "fd00::/8")}},
		{name: "include-outbound-cidrs", family: IPv4, cfg: Config{
			IncludeOutboundCIDRs: cidrs("10.0.0.0/8", "192.168.0.0/16"),
			ExcludeOutboundCIDRs: cidrs("10.96.0.10/32"),
		}},
		// Only IPv4 CIDRs are included, so no IPv6 destination is captured.
		{name: "include-outbound-cidrs-ipv6-none", family: IPv6, cfg: Config{IPv6: true, IncludeOutboundCIDRs: cidrs("10.0.0.0/8")}},
		{name: "custom-proxy", family: IPv4, cfg: Config{ProxyUID: 1337, ProxyGID: 1338, InboundPort: 16006, OutboundPort: 16001}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Rules(tt.cfg, tt.family)
			if err != nil {
				t.Fatalf("Rules: %v", err)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if os.Getenv("REFRESH_GOLDEN") != "" {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (REFRESH_GOLDEN=1 go test ./sidecar/capture/ writes it)", err)
			}
			if got != string(want) {
				t.Errorf("Rules differ from %s (REFRESH_GOLDEN=1 go test ./sidecar/capture/ rewrites it)\n%s",
					golden, lineDiff(string(want), got))
			}
		})
	}
}

func TestRulesRefusesInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{name: "same ports", cfg: Config{InboundPort: 15001}, want: "both 15001"},
		{name: "port zero", cfg: Config{ExcludeOutboundPorts: []uint16{80, 0}}, want: "outbound port 0"},
		{name: "invalid CIDR", cfg: Config{IncludeOutboundCIDRs: []netip.Prefix{{}}}, want: "included outbound CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Rules(tt.cfg, IPv4)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Rules error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// lineDiff shows the lines of want and got that differ, marked - and +.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

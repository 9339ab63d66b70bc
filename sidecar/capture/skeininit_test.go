package capture_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skeinmesh/skein/sidecar/capture"
)

// TestSkeinInit runs the skein-init binary in a real pod network namespace
// and checks where real TCP connections arrive.
func TestSkeinInit(t *testing.T) {
	needTools(t)
	bin := buildInit(t)
	far := net.JoinHostPort(farV4, "80")
	far6 := net.JoinHostPort(farV6, "80")
	pod := net.JoinHostPort(podV4, "8080")
	pod6 := net.JoinHostPort(podV6, "8080")

	// Without rules, the same checks see no capture: they can tell the two apart.
	t.Run("without rules nothing is captured", func(t *testing.T) {
		n := newTestNet(t)
		n.expect(t, n.pod, far, "world:80")
		n.expect(t, n.world, pod, "app:8080")
		n.expect(t, n.pod, far6, "world:80")
	})

	t.Run("outbound TCP to any address reaches 15001 with its original destination", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin)
		n.expect(t, n.pod, far, "proxy:15001 orig="+far)
		n.expect(t, n.pod, net.JoinHostPort(farV4, "5432"), "proxy:15001 orig="+farV4+":5432")
		// Nothing listens on this address anywhere: the proxy gets it anyway.
		n.expect(t, n.pod, "10.78.200.200:4242", "proxy:15001 orig=10.78.200.200:4242")
		// Another non-root user is captured like root.
		n.expect(t, n.pod, far, "proxy:15001 orig="+far, "uid=65534", "gid=65534")
	})

	t.Run("inbound TCP reaches 15006 with its original port", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin)
		n.expect(t, n.world, pod, "proxy:15006 orig="+pod)
		n.expect(t, n.world, net.JoinHostPort(podV4, "9090"), "proxy:15006 orig="+podV4+":9090")
	})

	t.Run("the proxy's own ports are not captured inbound", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin)
		n.expect(t, n.world, net.JoinHostPort(podV4, "15020"), "app:15020")
		n.expect(t, n.world, net.JoinHostPort(podV4, "15090"), "app:15090")
		n.expect(t, n.world, net.JoinHostPort(podV6, "15090"), "app:15090")
	})

	t.Run("the proxy's UID and GID go straight out", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin)
		n.expect(t, n.pod, far, "world:80", "uid=7117", "gid=7117")
		n.expect(t, n.pod, far, "world:80", "uid=7117", "gid=65534")
		n.expect(t, n.pod, far, "world:80", "uid=65534", "gid=7117")
		n.expect(t, n.pod, far6, "world:80", "uid=7117", "gid=7117")
	})

	t.Run("loopback is not captured except the proxy calling its own pod", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin)
		n.expect(t, n.pod, "127.0.0.1:8080", "app:8080")
		n.expect(t, n.pod, "[::1]:8080", "app:8080")
		n.expect(t, n.pod, pod, "app:8080")
		n.expect(t, n.pod, "127.0.0.1:8080", "app:8080", "uid=7117", "gid=7117")
		// As in Istio: the proxy calling its own pod passes its inbound side,
		// and its inbound passthrough from 127.0.0.6 does not.
		n.expect(t, n.pod, pod, "proxy:15006 orig="+pod, "uid=7117", "gid=7117")
		n.expect(t, n.pod, pod, "app:8080", "uid=7117", "gid=7117", "from=127.0.0.6")
	})

	t.Run("excluded outbound ports and CIDRs go straight out", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin, "--exclude-outbound-ports=5432", "--exclude-outbound-cidrs=10.78.2.0/24,fd78:2::/32")
		n.expect(t, n.pod, net.JoinHostPort(farV4, "5432"), "world:5432")
		n.expect(t, n.pod, net.JoinHostPort(excludedV4, "80"), "world:80")
		n.expect(t, n.pod, net.JoinHostPort(excludedV6, "80"), "world:80")
		n.expect(t, n.pod, far, "proxy:15001 orig="+far)
		n.expect(t, n.pod, far6, "proxy:15001 orig="+far6)
	})

	t.Run("with included CIDRs only those are captured", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin, "--include-outbound-cidrs=10.78.3.0/24")
		n.expect(t, n.pod, net.JoinHostPort(includedV4, "80"), "proxy:15001 orig="+includedV4+":80")
		n.expect(t, n.pod, far, "world:80")
		n.expect(t, n.pod, far6, "world:80") // no IPv6 CIDR is included
	})

	t.Run("excluded inbound ports reach the app", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin, "--exclude-inbound-ports=9090")
		n.expect(t, n.world, net.JoinHostPort(podV4, "9090"), "app:9090")
		n.expect(t, n.world, net.JoinHostPort(podV6, "9090"), "app:9090")
		n.expect(t, n.world, pod, "proxy:15006 orig="+pod)
	})

	t.Run("IPv6 is captured when the pod has a global IPv6 address", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin) // --ipv6=auto
		n.expect(t, n.pod, far6, "proxy:15001 orig="+far6)
		n.expect(t, n.world, pod6, "proxy:15006 orig="+pod6)
	})

	t.Run("--ipv6=false leaves IPv6 alone", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin, "--ipv6=false")
		n.expect(t, n.pod, far, "proxy:15001 orig="+far)
		n.expect(t, n.pod, far6, "world:80")
		if nat := n.nat(t, true); strings.Contains(nat, "SKEIN") {
			t.Errorf("IPv6 nat table has Skein's rules:\n%s", nat)
		}
	})

	t.Run("re-running replaces the rules and never duplicates them", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin)
		v4, v6 := n.nat(t, false), n.nat(t, true)
		for _, f := range []capture.Family{capture.IPv4, capture.IPv6} {
			rules, err := capture.Rules(capture.Config{IPv6: true}, f)
			if err != nil {
				t.Fatal(err)
			}
			checkInstalled(t, n.nat(t, f == capture.IPv6), rules)
		}
		n.mustInit(t, bin)
		if got := n.nat(t, false); got != v4 {
			t.Errorf("IPv4 nat table changed on re-run:\nbefore:\n%s\nafter:\n%s", v4, got)
		}
		if got := n.nat(t, true); got != v6 {
			t.Errorf("IPv6 nat table changed on re-run:\nbefore:\n%s\nafter:\n%s", v6, got)
		}

		n.mustInit(t, bin, "--exclude-outbound-ports=5432")
		rules, _ := capture.Rules(capture.Config{IPv6: true, ExcludeOutboundPorts: []uint16{5432}}, capture.IPv4)
		checkInstalled(t, n.nat(t, false), rules)
		n.expect(t, n.pod, net.JoinHostPort(farV4, "5432"), "world:5432")
		n.expect(t, n.pod, far, "proxy:15001 orig="+far)
	})

	t.Run("a refused IPv6 rule leaves both tables as they were", func(t *testing.T) {
		n := newTestNet(t)
		n.mustInit(t, bin)
		v4, v6 := n.nat(t, false), n.nat(t, true)
		path := fakePath(t, "ip6tables-restore")
		_, errOut, code := n.skeinInit(t, bin, []string{"PATH=" + path}, "--exclude-outbound-ports=5432")
		checkFailure(t, code, errOut, "ip6tables-restore refused the nat rules", "Chain 'NO_SUCH_CHAIN' does not exist")
		if got := n.nat(t, false); got != v4 {
			t.Errorf("IPv4 nat table was not put back:\nbefore:\n%s\nafter:\n%s", v4, got)
		}
		if got := n.nat(t, true); got != v6 {
			t.Errorf("IPv6 nat table changed:\nbefore:\n%s\nafter:\n%s", v6, got)
		}
		n.expect(t, n.pod, net.JoinHostPort(farV4, "5432"), "proxy:15001 orig="+farV4+":5432")
	})

	t.Run("a refused IPv4 rule changes nothing", func(t *testing.T) {
		n := newTestNet(t)
		before := n.nat(t, false)
		_, errOut, code := n.skeinInit(t, bin, []string{"PATH=" + fakePath(t, "iptables-restore")})
		checkFailure(t, code, errOut, "iptables-restore refused the nat rules", "NO_SUCH_CHAIN")
		if got := n.nat(t, false); got != before {
			t.Errorf("IPv4 nat table changed:\nbefore:\n%s\nafter:\n%s", before, got)
		}
		n.expect(t, n.pod, far, "world:80")
	})

	t.Run("a missing iptables-restore changes nothing", func(t *testing.T) {
		n := newTestNet(t)
		before := n.nat(t, false)
		path := fakePath(t, "")
		if err := os.Remove(filepath.Join(path, "iptables-restore")); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := n.skeinInit(t, bin, []string{"PATH=" + path})
		checkFailure(t, code, errOut, "iptables-restore is not installed")
		if got := n.nat(t, false); got != before {
			t.Errorf("IPv4 nat table changed:\nbefore:\n%s\nafter:\n%s", before, got)
		}
	})

	t.Run("an invalid CIDR changes nothing", func(t *testing.T) {
		n := newTestNet(t)
		before := n.nat(t, false)
		_, errOut, code := n.skeinInit(t, bin, nil, "--exclude-outbound-cidrs=10.0.0.0/8,10.0.0.0/33")
		checkFailure(t, code, errOut, `--exclude-outbound-cidrs: CIDR "10.0.0.0/33"`)
		if got := n.nat(t, false); got != before {
			t.Errorf("IPv4 nat table changed:\nbefore:\n%s\nafter:\n%s", before, got)
		}
	})
}

// checkInstalled checks that the saved nat table holds each rule of the
// iptables-restore input rules exactly once.
func checkInstalled(t *testing.T, saved, rules string) {
	t.Helper()
	for _, l := range strings.Split(rules, "\n") {
		if !strings.HasPrefix(l, "-A ") {
			continue
		}
		if got := strings.Count(saved+"\n", l+"\n"); got != 1 {
			t.Errorf("nat table has %d copies of %q, want 1:\n%s", got, l, saved)
		}
	}
}

// checkFailure checks that skein-init exited 1 with one line on stderr that
// contains each of wants.
func checkFailure(t *testing.T, code int, stderr string, wants ...string) {
	t.Helper()
	if code != 1 {
		t.Errorf("skein-init exited %d, want 1; stderr: %s", code, stderr)
	}
	if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
		t.Errorf("skein-init wrote %d lines to stderr, want 1:\n%s", lines, stderr)
	}
	for _, want := range wants {
		if !strings.Contains(stderr, want) {
			t.Errorf("skein-init's stderr %q lacks %q", stderr, want)
		}
	}
	t.Logf("stderr: %s", strings.TrimSpace(stderr))
}

package listener

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// helperEnv selects a helper role when the test binary re-executes itself
// inside a network namespace (`ip netns exec NS listener.test`): a Go
// process cannot safely move its own threads between namespaces, but one
// started inside a namespace is wholly in it (sidecar/capture's pattern).
const helperEnv = "SKEIN_LISTENER_HELPER"

// The namespace: one veth pair with both ends inside it, so that the
// "ClusterIPs" 10.88.1.0/24 have a route, and nothing leaves the
// namespace. Backends listen on addresses on its loopback.
const (
	vethNet    = "10.88.0.1/16"
	backendIP  = "10.88.0.10" // services A (8001) and B (8002)
	serviceA   = "10.88.1.1"  // ClusterIP with chains for ports 80 (TCP) and 9090 (HTTP)
	serviceB   = "10.88.1.2"  // ClusterIP with a chain for port 80
	elsewhere  = "10.88.1.3"  // no chain: passthrough to a real listener there
	captureUID = 1000         // only this user's connections are captured
)

// runHelper runs the helper role the environment asks for, if any, and
// reports whether it did.
func runHelper() bool {
	switch os.Getenv(helperEnv) {
	case "":
		return false
	case "proxy":
		helperProxy()
	case "dial":
		helperDial(os.Args[1], os.Args[2])
	default:
		fmt.Fprintf(os.Stderr, "unknown helper role %q\n", os.Getenv(helperEnv))
		os.Exit(2)
	}
	return true
}

// helperProxy starts the backends and a Manager serving a virtualOutbound
// like the control plane's, prints "ready", and runs until killed.
func helperProxy() {
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	serveLines := func(addr, name string) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fail(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					line, _ := bufio.NewReader(c).ReadString('\n')
					fmt.Fprintf(c, "%s %s\n", name, strings.TrimSpace(line))
				}()
			}
		}()
	}
	serveLines(backendIP+":8001", "A")
	serveLines(backendIP+":8002", "B")
	serveLines(elsewhere+":80", "elsewhere")

	d := &testDialer{clusters: map[string]netip.AddrPort{
		"outbound|80||a": netip.MustParseAddrPort(backendIP + ":8001"),
		"outbound|80||b": netip.MustParseAddrPort(backendIP + ":8002"),
	}}
	m, err := NewManager(Config{Dialer: d, Filters: map[string]FilterFactory{HTTPConnectionManagerType: fakeHCM, answerType: answerFactory}})
	if err != nil {
		fail(err)
	}
	t := panicTB{}
	ranges := func(ip string) []*corev3.CidrRange { return []*corev3.CidrRange{cidr(ip + "/32")} }
	err = m.Update([]*listenerv3.Listener{{
		Name:             "virtualOutbound",
		Address:          socketAddr("0.0.0.0", 15001),
		UseOriginalDst:   wrapperspb.Bool(true),
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
		FilterChains: []*listenerv3.FilterChain{
			chain(serviceA+"_80", &listenerv3.FilterChainMatch{DestinationPort: port(80), PrefixRanges: ranges(serviceA)}, toCluster(t, "outbound|80||a")),
			chain(serviceB+"_80", &listenerv3.FilterChainMatch{DestinationPort: port(80), PrefixRanges: ranges(serviceB)}, toCluster(t, "outbound|80||b")),
			chain(serviceA+"_9090", &listenerv3.FilterChainMatch{DestinationPort: port(9090), PrefixRanges: ranges(serviceA)}, hcm(t)),
			chain("port8080", &listenerv3.FilterChainMatch{DestinationPort: port(8080)}, answer(t, "port8080")),
		},
		DefaultFilterChain: chain("PassthroughCluster", nil, toCluster(t, "PassthroughCluster")),
	}})
	if err != nil {
		fail(err)
	}
	fmt.Println("ready")
	select {}
}

// helperDial switches to uid, connects to addr, sends a line and prints the
// line answered, or "error: ...".
func helperDial(addr, uid string) {
	n, _ := strconv.Atoi(uid)
	if n > 0 {
		if err := syscall.Setgroups(nil); err != nil {
			fmt.Println("error: setgroups:", err)
			return
		}
		if err := syscall.Setgid(n); err != nil {
			fmt.Println("error: setgid:", err)
			return
		}
		if err := syscall.Setuid(n); err != nil {
			fmt.Println("error: setuid:", err)
			return
		}
	}
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line := "hello"
	if strings.HasSuffix(addr, ":9090") {
		line = "GET / HTTP/1.1\r"
	}
	fmt.Fprintf(c, "%s\n", line)
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Println("error: read:", err)
		return
	}
	fmt.Print(got)
}

// TestCaptureListenerChoosesByOriginalDestination: in a network namespace,
// iptables REDIRECTs a user's connections to 10.88.1.0/24 to the
// use_original_dst listener on 15001, which reads SO_ORIGINAL_DST and
// serves each with the chain of that address and port.
func TestCaptureListenerChoosesByOriginalDestination(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create a network namespace and write iptables rules in it")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed", tool)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("skeinlistener-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("delete namespace %s: %v: %s", ns, err, out)
		}
	})
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	run("ip", "-n", ns, "link", "set", "v0", "up")
	run("ip", "-n", ns, "link", "set", "v1", "up")
	run("ip", "-n", ns, "addr", "add", vethNet, "dev", "v0")
	run("ip", "-n", ns, "addr", "add", backendIP+"/32", "dev", "lo")
	run("ip", "-n", ns, "addr", "add", elsewhere+"/32", "dev", "lo")
	run("ip", "netns", "exec", ns, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "10.88.1.0/24",
		"-m", "owner", "--uid-owner", strconv.Itoa(captureUID), "-j", "REDIRECT", "--to-ports", "15001")

	dialAs := func(addr string, uid int) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, self, addr, strconv.Itoa(uid))
		cmd.Env = append(os.Environ(), helperEnv+"=dial")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dial %s: %v: %s", addr, err, out)
		}
		return strings.TrimSpace(string(out))
	}

	// Control: with no proxy listening, the captured connection is refused,
	// so the answers below come through the proxy.
	if got := dialAs(serviceA+":80", captureUID); !strings.Contains(got, "connection refused") {
		t.Fatalf("before the proxy runs, a captured connection got %q, want it refused", got)
	}

	proxy := exec.Command("ip", "netns", "exec", ns, self)
	proxy.Env = append(os.Environ(), helperEnv+"=proxy")
	proxy.Stderr = os.Stderr
	stdout, err := proxy.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = proxy.Process.Kill()
		_ = proxy.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			t.Fatalf("proxy helper: %q", line)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the proxy helper did not start within 15s")
	}

	for _, tc := range []struct {
		name, addr, want string
	}{
		{"service A's chain", serviceA + ":80", "A hello"},
		{"service B's chain: same port, another address", serviceB + ":80", "B hello"},
		{"service A's HTTP chain: another port, protocol detected", serviceA + ":9090", "hcm http1 GET / HTTP/1.1"},
		{"a port-only chain", serviceB + ":8080", "port8080 unknown hello"},
		{"no chain: passthrough to the original destination", elsewhere + ":80", "elsewhere hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dialAs(tc.addr, captureUID); got != tc.want {
				t.Errorf("captured connection to %s answered %q, want %q", tc.addr, got, tc.want)
			}
		})
	}
}

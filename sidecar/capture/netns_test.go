package capture_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The test network: a "pod" namespace and a "world" namespace joined by a
// veth pair that is created inside them, so it never exists in the host's
// namespace. Neither has any other interface, so nothing can leave the
// machine. The "arbitrary" destinations are addresses on world's loopback,
// which the pod reaches only through world.
const (
	podV4, worldV4 = "10.77.0.2", "10.77.0.1"
	podV6, worldV6 = "fd77::2", "fd77::1"
	// Addresses on world's loopback, and the routes that reach them.
	farV4, excludedV4, includedV4 = "10.78.1.1", "10.78.2.1", "10.78.3.1"
	farV6, excludedV6             = "fd78::1", "fd78:2::1"
	farRouteV4, farRouteV6        = "10.78.0.0/16", "fd78::/16"
)

// netnsSeq numbers the namespaces of one test process.
var netnsSeq atomic.Int64

// testNet is one pod and one world namespace, with the listeners that the
// checks connect to:
//   - in the pod, "proxy" on 15001 (dual-stack) and 15006 (IPv4 and IPv6
//     sockets), and "app" on 8080, 9090, 15020 and 15090 (dual-stack);
//   - in the world, "world" on 80 and 5432 (dual-stack).
type testNet struct {
	ip, self   string // the ip tool and this test binary
	pod, world string // namespace names
}

// newTestNet builds the two namespaces and starts their listeners; every
// namespace and process goes away when t ends, whatever its outcome.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	ip := needTools(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("skeintest-%d-%d", os.Getpid(), netnsSeq.Add(1))
	n := &testNet{ip: ip, self: self, pod: prefix + "-pod", world: prefix + "-world"}
	for _, ns := range []string{n.pod, n.world} {
		n.run(t, "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("delete namespace %s: %v: %s", ns, err, out)
			}
		})
	}
	n.run(t, "-n", n.pod, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", n.world)
	for _, ns := range []string{n.pod, n.world} {
		n.run(t, "-n", ns, "link", "set", "lo", "up")
		n.run(t, "-n", ns, "link", "set", "veth0", "up")
	}
	n.run(t, "-n", n.pod, "addr", "add", podV4+"/24", "dev", "veth0")
	n.run(t, "-n", n.pod, "addr", "add", podV6+"/64", "dev", "veth0", "nodad")
	n.run(t, "-n", n.world, "addr", "add", worldV4+"/24", "dev", "veth0")
	n.run(t, "-n", n.world, "addr", "add", worldV6+"/64", "dev", "veth0", "nodad")
	for _, a := range []string{farV4 + "/32", excludedV4 + "/32", includedV4 + "/32", farV6 + "/128", excludedV6 + "/128"} {
		n.run(t, "-n", n.world, "addr", "add", a, "dev", "lo")
	}
	n.run(t, "-n", n.pod, "route", "add", farRouteV4, "via", worldV4)
	n.run(t, "-n", n.pod, "route", "add", farRouteV6, "via", worldV6)

	n.listen(t, n.pod, "proxy", "tcp/:15001", "tcp4/0.0.0.0:15006", "tcp6/[::]:15006")
	n.listen(t, n.pod, "app", "tcp/:8080", "tcp/:9090", "tcp/:15020", "tcp/:15090")
	n.listen(t, n.world, "world", "tcp/:80", "tcp/:5432")
	return n
}

// needTools skips the test unless it runs as root with ip, iptables and
// ip6tables at hand, and returns the ip tool's path.
func needTools(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create network namespaces and write iptables rules in them")
	}
	var paths []string
	for _, tool := range []string{"ip", "iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("skipped: %s is not installed (apt-get install -y iproute2 iptables)", tool)
		}
		paths = append(paths, p)
	}
	return paths[0]
}

// run runs the ip tool with args and fails t if it fails.
func (n *testNet) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(n.ip, args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// inNetns returns a command that runs name with args inside namespace ns.
func (n *testNet) inNetns(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, n.ip, append([]string{"netns", "exec", ns, name}, args...)...)
}

// listen starts a listen helper in ns and waits until it listens.
func (n *testNet) listen(t *testing.T, ns, name string, addrs ...string) {
	t.Helper()
	cmd := n.inNetns(context.Background(), ns, n.self, append([]string{name}, addrs...)...)
	cmd.Env = append(os.Environ(), helperEnv+"=listen")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			t.Fatalf("listener %s in %s: %q", name, ns, line)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("listener %s in %s did not start within 10s", name, ns)
	}
}

// dial connects from ns to addr with a dial helper and returns the line the
// listener answered ("proxy:15001 orig=10.78.1.1:80"), or "error: ...".
func (n *testNet) dial(t *testing.T, ns, addr string, opts ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := n.inNetns(ctx, ns, n.self, append([]string{addr}, opts...)...)
	cmd.Env = append(os.Environ(), helperEnv+"=dial")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dial %s from %s %v: %v: %s", addr, ns, opts, err, out)
	}
	return strings.TrimSpace(string(out))
}

// expect dials addr from ns and checks where the connection arrived.
func (n *testNet) expect(t *testing.T, ns, addr, want string, opts ...string) {
	t.Helper()
	if got := n.dial(t, ns, addr, opts...); got != want {
		t.Errorf("connection from %s to %s %v arrived at %q, want %q", nsRole(ns), addr, opts, got, want)
	}
}

func nsRole(ns string) string { return ns[strings.LastIndex(ns, "-")+1:] }

// skeinInit runs skein-init in the pod namespace, with env added to the
// test's environment, and returns its stdout, its stderr and its exit code.
func (n *testNet) skeinInit(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := n.inNetns(ctx, n.pod, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run skein-init: %v", err)
	}
	return out.String(), errOut.String(), code
}

// mustInit runs skein-init and fails t unless it succeeds.
func (n *testNet) mustInit(t *testing.T, bin string, args ...string) {
	t.Helper()
	if out, errOut, code := n.skeinInit(t, bin, nil, args...); code != 0 {
		t.Fatalf("skein-init %v exited %d: %s%s", args, code, errOut, out)
	}
}

// nat returns the pod's nat table as iptables-save (or ip6tables-save with
// v6) shows it, without its timestamped comments.
func (n *testNet) nat(t *testing.T, v6 bool) string {
	t.Helper()
	save := "iptables-save"
	if v6 {
		save = "ip6tables-save"
	}
	out, err := n.inNetns(context.Background(), n.pod, save, "-t", "nat").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", save, err, out)
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// buildInit builds cmd/init into a temporary directory and returns its path.
func buildInit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "skein-init")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/skeinmesh/skein/cmd/init")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/init: %v: %s", err, out)
	}
	return bin
}

// fakePath returns a directory for PATH holding the real iptables tools,
// except that refusing (if not "") is a wrapper that adds a rule no table can
// hold to its input before handing it to the real tool: the real
// iptables-restore then refuses the whole input, as it would a bad rule of
// ours.
func fakePath(t *testing.T, refusing string) string {
	t.Helper()
	dir := t.TempDir()
	sed, err := exec.LookPath("sed")
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"} {
		real, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if tool != refusing {
			if err := os.Symlink(real, filepath.Join(dir, tool)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		script := fmt.Sprintf("#!/bin/sh\n%s 's/^COMMIT$/-A SKEIN_OUTPUT -j NO_SUCH_CHAIN\\nCOMMIT/' | exec %s \"$@\"\n", sed, real)
		if err := os.WriteFile(filepath.Join(dir, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

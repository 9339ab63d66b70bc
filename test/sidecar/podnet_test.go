// Package sidecar_test runs skein-init and skein-proxy together, as a meshed
// pod does: skein-init's rules in a network namespace of the test's own, the
// proxy inside it as UID 7117, and apps on both sides of a veth.
package sidecar_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skeinmesh/skein/internal/testenv"
)

// The test network: a "pod" namespace and a "world" namespace joined by a
// veth created inside them; neither has another interface or a route off
// the machine. farIP is an address on world's loopback, reached through it.
const (
	podIP, worldIP = "10.79.0.2", "10.79.0.1"
	farIP          = "10.80.1.1"
)

type podNet struct {
	pod, world string
	bin        string // directory of the built binaries
}

func newPodNet(t *testing.T) *podNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range []string{"ip", "iptables-restore", "curl", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	n := &podNet{pod: fmt.Sprintf("skeinpod-%d", os.Getpid()), world: fmt.Sprintf("skeinworld-%d", os.Getpid()), bin: t.TempDir()}
	for _, pkg := range []string{"./cmd/init", "./cmd/proxy", "./test/images/echo"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(n.bin, filepath.Base(pkg)), pkg)
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v: %s", pkg, err, out)
		}
	}
	for _, ns := range []string{n.pod, n.world} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "-n", n.pod, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", n.world)
	for _, ns := range []string{n.pod, n.world} {
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	}
	run(t, "ip", "-n", n.pod, "addr", "add", podIP+"/24", "dev", "eth0")
	run(t, "ip", "-n", n.world, "addr", "add", worldIP+"/24", "dev", "eth0")
	run(t, "ip", "-n", n.world, "addr", "add", farIP+"/32", "dev", "lo")
	run(t, "ip", "-n", n.pod, "route", "add", "10.80.0.0/16", "via", worldIP)
	return n
}

// start runs a binary of n.bin in namespace ns as uid, with env added to
// its environment, until the test ends.
func (n *podNet) start(t *testing.T, ns string, uid int, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	argv := []string{"netns", "exec", ns, "setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups",
		filepath.Join(n.bin, name)}
	cmd := exec.Command("ip", append(argv, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// get fetches url from namespace ns as uid with curl and decodes the echo
// backend's answer.
func get(ns string, uid int, url string) (echoAnswer, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid),
		"--clear-groups", "curl", "-sS", "--max-time", "3", url).CombinedOutput()
	if err != nil {
		return echoAnswer{}, fmt.Errorf("curl %s: %v: %s", url, err, out)
	}
	var a echoAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		return echoAnswer{}, fmt.Errorf("curl %s: %v: %s", url, err, out)
	}
	return a, nil
}

// echoAnswer is the part of test/images/echo's answer the test reads.
type echoAnswer struct {
	Version    string `json:"version"`
	RemoteAddr string `json:"remoteAddr"`
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// eventually retries f for a few seconds, for processes that are starting.
func eventually(f func() error) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

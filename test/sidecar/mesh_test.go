package sidecar_test

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

const (
	appUID   = 1000
	proxyUID = 7117
)

// TestCapturedTrafficFlowsThroughTheProxy: with skein-init's rules in the
// pod and skein-proxy running as 7117, the app's outbound calls and inbound
// calls to the app both work, and both go through the proxy: the app sees
// inbound callers as 127.0.0.6, and with the proxy stopped the same calls
// fail. The kubelet's probe port is not captured.
func TestCapturedTrafficFlowsThroughTheProxy(t *testing.T) {
	n := newPodNet(t)
	run(t, "ip", "netns", "exec", n.pod, n.bin+"/init", "--ipv6=false")
	n.start(t, n.world, 65534, []string{"VERSION=world"}, "echo", "-port", "5000", "-grpc-port", "5001")
	n.start(t, n.pod, appUID, []string{"VERSION=app"}, "echo", "-port", "8080", "-grpc-port", "9090")
	proxy := n.start(t, n.pod, proxyUID, nil, "proxy", "--drain-timeout", "1s")

	outbound := "http://" + farIP + ":5000/catalog"
	if err := eventually(func() error {
		a, err := get(n.pod, appUID, outbound)
		if err == nil && a.Version != "world" {
			err = fmt.Errorf("answered by %q, want the world's backend", a.Version)
		}
		return err
	}); err != nil {
		t.Fatalf("app -> outbound capture -> proxy -> world: %v", err)
	}

	a, err := get(n.world, 65534, "http://"+podIP+":8080/")
	if err != nil {
		t.Fatalf("world -> inbound capture -> proxy -> app: %v", err)
	}
	if a.Version != "app" || !strings.HasPrefix(a.RemoteAddr, "127.0.0.6:") {
		t.Errorf("the app answered %+v; want it reached by the proxy from 127.0.0.6", a)
	}

	out, err := exec.Command("ip", "netns", "exec", n.world, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3",
		"http://"+podIP+":15020/healthz/ready").Output()
	if err != nil || string(out) != "200" {
		t.Errorf("the kubelet-like probe of the proxy's readiness: %v %s", err, out)
	}

	_ = proxy.Process.Signal(syscall.SIGTERM)
	_ = proxy.Wait()
	if _, err := get(n.pod, appUID, outbound); err == nil {
		t.Error("with the proxy stopped the app still reached the world: its traffic was not going through the proxy")
	}
	if _, err := get(n.world, 65534, "http://"+podIP+":8080/"); err == nil {
		t.Error("with the proxy stopped the world still reached the app: inbound traffic was not going through the proxy")
	}
}

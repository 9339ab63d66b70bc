package main

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLifecycle runs the real binary with no config (the capture
// passthrough alone): it becomes ready, `skein-proxy wait` returns once it
// is, and SIGTERM makes it exit 0.
func TestLifecycle(t *testing.T) {
	p := startProxy(t, []string{`SKEIN_APP_PROBES={"/app-health/web/readyz":{"httpGet":{"path":"/","port":` + freePort(t) + `}}}`},
		"--outbound-port", freePort(t), "--inbound-port", freePort(t), "--drain-timeout", "1s")
	wait := exec.Command(binary, "wait", "--url", p.health+"/healthz/ready", "--timeout", "10s")
	if out, err := wait.CombinedOutput(); err != nil {
		t.Fatalf("skein-proxy wait: %v: %s", err, out)
	}
	resp, err := http.Get(p.health + "/app-health/web/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("the probe of an app that is not listening answered %d, want 503", resp.StatusCode)
	}
	p.stop(10 * time.Second)
}

func TestBadProbesConfigExits1(t *testing.T) {
	cmd := exec.Command(binary, "--outbound-port", freePort(t), "--inbound-port", freePort(t), "--health-port", freePort(t),
		"--stats-port", freePort(t), "--admin-address", "127.0.0.1:"+freePort(t))
	cmd.Env = append(os.Environ(), "SKEIN_APP_PROBES={")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 || !strings.Contains(string(out), "SKEIN_APP_PROBES") {
		t.Errorf("exit %d, output %s; want 1 naming SKEIN_APP_PROBES", code, out)
	}
}

func TestWaitGivesUp(t *testing.T) {
	cmd := exec.Command(binary, "wait", "--url", "http://127.0.0.1:"+freePort(t)+"/healthz/ready", "--timeout", "500ms")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not ready within") {
		t.Errorf("wait on nothing: %v, %s", err, out)
	}
}

// TestSidecarWithoutIdentityExits1: an injected proxy (SKEIN_XDS_ADDRESS
// set) whose pod fields are missing cannot name itself to the control
// plane: it says which and exits 1 instead of running without config.
func TestSidecarWithoutIdentityExits1(t *testing.T) {
	cmd := exec.Command(binary, "--outbound-port", freePort(t), "--inbound-port", freePort(t), "--health-port", freePort(t),
		"--stats-port", freePort(t), "--admin-address", "127.0.0.1:"+freePort(t))
	cmd.Env = append(os.Environ(), "SKEIN_XDS_ADDRESS=127.0.0.1:"+freePort(t), "POD_NAMESPACE=default", "POD_IP=127.0.0.1")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 || !strings.Contains(string(out), "POD_NAME") {
		t.Errorf("exit %d, output %s; want 1 naming POD_NAME", code, out)
	}
}

package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLifecycle runs the real binary: it becomes ready, `skein-proxy wait`
// returns once it is, and SIGTERM makes it exit 0.
func TestLifecycle(t *testing.T) {
	bin := build(t)
	out, in, hp := freePort(t), freePort(t), freePort(t)
	cmd := exec.Command(bin, "--outbound-port", out, "--inbound-port", in, "--health-port", hp, "--drain-timeout", "1s")
	cmd.Env = append(os.Environ(), `SKEIN_APP_PROBES={"/app-health/web/readyz":{"httpGet":{"path":"/","port":`+freePort(t)+`}}}`)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	url := "http://127.0.0.1:" + hp
	wait := exec.Command(bin, "wait", "--url", url+"/healthz/ready", "--timeout", "10s")
	if out, err := wait.CombinedOutput(); err != nil {
		t.Fatalf("skein-proxy wait: %v: %s\nproxy: %s", err, out, stderr.String())
	}
	resp, err := http.Get(url + "/app-health/web/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("the probe of an app that is not listening answered %d, want 503", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
}

func TestBadProbesConfigExits1(t *testing.T) {
	cmd := exec.Command(build(t), "--outbound-port", freePort(t), "--inbound-port", freePort(t), "--health-port", freePort(t))
	cmd.Env = append(os.Environ(), "SKEIN_APP_PROBES={")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 || !strings.Contains(string(out), "SKEIN_APP_PROBES") {
		t.Errorf("exit %d, output %s; want 1 naming SKEIN_APP_PROBES", code, out)
	}
}

func TestWaitGivesUp(t *testing.T) {
	cmd := exec.Command(build(t), "wait", "--url", "http://127.0.0.1:"+freePort(t)+"/healthz/ready", "--timeout", "500ms")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not ready within") {
		t.Errorf("wait on nothing: %v, %s", err, out)
	}
}

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "skein-proxy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

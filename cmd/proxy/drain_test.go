package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDrainOnSIGTERM sends SIGTERM while requests that take 500 ms are in
// flight through a tcp_proxy listener and an HCM listener: every one of
// them completes, new connections are refused from then on, and the
// proxy exits 0 once they are done, well before the drain timeout.
func TestDrainOnSIGTERM(t *testing.T) {
	be := startBackend(t, "slow")
	be.delay.Store(int64(500 * time.Millisecond))
	tcpPort, httpPort, ap := freePort(t), freePort(t), freePort(t)
	path := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := os.WriteFile(path, []byte(twoListeners(ap, tcpPort, httpPort, be.port)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, nil, "-c", path, "--drain-timeout", "10s")
	p.admin = "http://127.0.0.1:" + ap
	p.waitReady()

	const perPort = 5
	type result struct {
		code int
		body string
	}
	results := make(chan result, 2*perPort)
	var wg sync.WaitGroup
	for _, port := range []string{tcpPort, httpPort} {
		for range perPort {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body := get("http://127.0.0.1:" + port + "/")
				results <- result{code, body}
			}()
		}
	}
	eventually(t, 5*time.Second, func() string {
		if n := be.hits.Load(); n != 2*perPort {
			return fmt.Sprintf("%d requests reached the backend, want %d in flight", n, 2*perPort)
		}
		return ""
	})
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused while the old ones finish.
	eventually(t, 400*time.Millisecond, func() string {
		for _, port := range []string{tcpPort, httpPort} {
			if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
				c.Close()
				return "port " + port + " still accepts connections after SIGTERM"
			}
		}
		return ""
	})
	wg.Wait()
	close(results)
	for r := range results {
		if r.code != 200 || r.body != "slow" {
			t.Errorf("a request in flight at SIGTERM: %d %q", r.code, r.body)
		}
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("exit after the drain: %v", p.err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("exit %s after SIGTERM: the drain waited for more than its connections", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGTERM")
	}
}

// twoListeners is a bootstrap with admin on adminPort, a tcp_proxy listener
// and an HCM listener (inline routes) to one backend.
func twoListeners(adminPort, tcpPort, httpPort string, backendPort int) string {
	return lines(
		"node: {id: drain, cluster: test}",
		"admin: {address: {socket_address: {address: 127.0.0.1, port_value: "+adminPort+"}}}",
		"static_resources:",
		"  listeners:",
		"  - name: tcp",
		"    address: {socket_address: {address: 127.0.0.1, port_value: "+tcpPort+"}}",
		"    filter_chains:",
		"    - filters:",
		"      - name: envoy.filters.network.tcp_proxy",
		"        typed_config:",
		`          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
		"          stat_prefix: tcp",
		"          cluster: backend",
		httpListener("http", httpPort, `{match: {prefix: /}, route: {cluster: backend}}`),
		"  clusters:",
		"  - name: backend",
		"    type: STATIC",
		"    connect_timeout: 1s",
		"    load_assignment:",
		"      cluster_name: backend",
		fmt.Sprintf("      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}]}]", backendPort),
	)
}

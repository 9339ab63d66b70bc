package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// binary is skein-proxy, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	if runHelper() {
		return
	}
	dir, err := os.MkdirTemp("", "skein-proxy-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "skein-proxy")
	if out, err := exec.Command("go", append(append([]string{"build"}, buildFlags...), "-o", binary, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v: %s\n", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a port that is free on every address, for a port the
// proxy binds after the test picked it. It is drawn below the kernel's
// ephemeral range (ip_local_port_range starts at 32768 by default): a port
// from that range, freed again, can be taken by any outgoing connection on
// the machine before the proxy binds it (CI saw "address already in use").
//
// Each port is handed out once per test binary (two picks before either
// is bound cannot collide), and from this package's own range,
// 20000-27999 (sidecar/proxy's tests use 28000-31999), so that packages
// tested in parallel do not pick each other's ports either.
func freePort(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		port := 20000 + rand.IntN(8000)
		if portsGiven[port] {
			continue
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		portsGiven[port] = true
		return strconv.Itoa(port)
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// syncBuffer collects the proxy's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running skein-proxy.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *syncBuffer
	admin  string // http://127.0.0.1:port
	health string
	stats  string
	done   chan struct{}
	err    error // cmd.Wait's, once done is closed
}

// startProxy runs skein-proxy with args plus its own free health, stats and
// (without -c) admin ports, and env added to the test's environment.
func startProxy(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, log: &syncBuffer{}, done: make(chan struct{})}
	hp, sp := freePort(t), freePort(t)
	p.health, p.stats = "http://127.0.0.1:"+hp, "http://127.0.0.1:"+sp
	args = append(args, "--health-port", hp, "--stats-port", sp)
	if !slices.Contains(args, "-c") { // with -c, the bootstrap's admin: the caller sets p.admin
		ap := freePort(t)
		p.admin = "http://127.0.0.1:" + ap
		args = append(args, "--admin-address", "127.0.0.1:"+ap)
	}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if strings.Contains(p.log.String(), "DATA RACE") {
			t.Error("the race detector found a race in skein-proxy")
		}
		if t.Failed() {
			t.Logf("skein-proxy log:\n%s", p.log.String())
		}
	})
	return p
}

// get fetches url on a new connection and returns the status and body;
// status 0 when the request failed.
func get(url string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually retries f until it returns "" or d passes, then fails with
// f's last complaint.
func eventually(t *testing.T, d time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exited says why the proxy is no longer running, "" while it runs.
func (p *proc) exited() string {
	select {
	case <-p.done:
		return "skein-proxy exited: " + fmt.Sprint(p.err)
	default:
		return ""
	}
}

// waitReady waits for the admin's /ready and the health port's readiness.
func (p *proc) waitReady() {
	p.t.Helper()
	eventually(p.t, 10*time.Second, func() string {
		if msg := p.exited(); msg != "" {
			return msg
		}
		if code, body := get(p.admin + "/ready"); code != 200 {
			return fmt.Sprintf("admin /ready: %d %s", code, body)
		}
		if code, body := get(p.health + "/healthz/ready"); code != 200 {
			return fmt.Sprintf("/healthz/ready: %d %s", code, body)
		}
		return ""
	})
}

// stop sends SIGTERM and waits for the exit, which must be 0.
func (p *proc) stop(within time.Duration) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("exit after SIGTERM: %v", p.err)
		}
	case <-time.After(within):
		p.t.Fatalf("still running %s after SIGTERM", within)
	}
}

// backend is an HTTP server on 127.0.0.1 that answers its name and counts
// requests.
type backend struct {
	name  string
	addr  string
	port  int
	hits  atomic.Int64
	delay atomic.Int64 // nanoseconds each request waits
	srv   *http.Server
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if d := time.Duration(b.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, b.name)
	})}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

// yamlQuote keeps a test's YAML readable.
func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }

// httpListener is a bootstrap's static listener, as YAML lines for
// lines(): HTTP connection manager (codec AUTO) on 127.0.0.1:port with one
// virtual host of the given routes (YAML flow mappings) and the router.
func httpListener(name, port string, routes ...string) string {
	return strings.Join([]string{
		"  - name: " + name,
		"    address: {socket_address: {address: 127.0.0.1, port_value: " + port + "}}",
		"    filter_chains:",
		"    - filters:",
		"      - name: envoy.filters.network.http_connection_manager",
		"        typed_config:",
		`          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
		"          stat_prefix: http",
		"          route_config:",
		"            name: local",
		`            virtual_hosts: [{name: all, domains: ["*"], routes: [` + strings.Join(routes, ", ") + `]}]`,
		"          http_filters:",
		"          - name: envoy.filters.http.router",
		"            typed_config:",
		`              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router`,
	}, "\n")
}

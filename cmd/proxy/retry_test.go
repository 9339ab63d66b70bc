package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Retries end to end: skein-proxy from a static bootstrap whose routes
// carry the retry policy the control plane gives every sidecar route
// (Istio's), in front of STATIC clusters of real backends on 127.0.0.1,
// one of them failing the way a terminating pod does. Round robin over
// the hosts makes every other request pick the failing one first, so a
// proxy that did not retry would fail half of them.

// istioRetryPolicy is the translator's default retry policy, as YAML.
const istioRetryPolicy = `{retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", ` +
	`num_retries: 2, retriable_status_codes: [503], host_selection_retry_max_attempts: 5, ` +
	`retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts, typed_config: ` +
	`{"@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}]}`

// retryCluster is a STATIC round-robin cluster of a retry test.
type retryCluster struct {
	name   string
	h2     bool     // the hosts speak h2c
	ports  []string // the hosts, on 127.0.0.1, in round-robin order
	policy string   // lb_policy; "" is ROUND_ROBIN
}

// startRetryProxy runs skein-proxy with one HCM listener (codec AUTO) whose
// routes are routes (YAML flow route entries) and returns its URL.
func startRetryProxy(t *testing.T, routes []string, clusters ...retryCluster) string {
	t.Helper()
	hp, ap := freePort(t), freePort(t)
	cfg := []string{
		"node: {id: retry, cluster: test}",
		"admin: {address: {socket_address: {address: 127.0.0.1, port_value: " + ap + "}}}",
		"static_resources:",
		"  listeners:",
		httpListener("http", hp, routes...),
		"  clusters:",
	}
	for _, c := range clusters {
		cfg = append(cfg,
			"  - name: "+c.name,
			"    type: STATIC",
			"    connect_timeout: 1s",
			"    lb_policy: "+cmp.Or(c.policy, "ROUND_ROBIN"))
		if c.h2 {
			cfg = append(cfg,
				"    typed_extension_protocol_options:",
				"      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:",
				`        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
				"        explicit_http_config: {http2_protocol_options: {}}")
		}
		cfg = append(cfg,
			"    load_assignment:",
			"      cluster_name: "+c.name,
			"      endpoints:",
			"      - lb_endpoints:")
		for _, p := range c.ports {
			cfg = append(cfg, "        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: "+p+"}}}")
		}
	}
	path := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := os.WriteFile(path, []byte(lines(cfg...)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, nil, "-c", path)
	p.admin = "http://127.0.0.1:" + ap
	p.waitReady()
	return "http://127.0.0.1:" + hp
}

// route is a YAML flow route entry: prefix to cluster, with a retry policy
// unless policy is "".
func route(prefix, cluster, policy string) string {
	r := "{match: {prefix: " + prefix + "}, route: {cluster: " + cluster + ", timeout: 10s"
	if policy != "" {
		r += ", retry_policy: " + policy
	}
	return r + "}}"
}

// httpHost is a backend on 127.0.0.1 counting the requests it got.
type httpHost struct {
	port string
	hits atomic.Int64
}

// serveHost serves h over HTTP/1.1 (and h2c when h2).
func serveHost(t *testing.T, h2 bool, h http.HandlerFunc) *httpHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hh := &httpHost{port: strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hh.hits.Add(1)
		h(w, r)
	})}
	if h2 {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return hh
}

// echoBody answers 200 "<name> <body>".
func echoBody(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", name, b)
	}
}

// terminating answers as a terminating pod's inbound proxy does: 503
// upstream_connect_failure, after reading the body (bodies records what
// it read).
func terminating(bodies *atomic.Value) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if bodies != nil {
			bodies.Store(string(b))
		}
		w.Header().Set("X-Skein-Reason", "upstream_connect_failure")
		w.WriteHeader(503)
		io.WriteString(w, "upstream_connect_failure: the connection to the upstream endpoint failed\n")
	}
}

// post sends a POST and returns the status, reason header and body.
func post(t *testing.T, c *http.Client, url, body string) (int, string, string) {
	t.Helper()
	resp, err := c.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Skein-Reason"), string(b)
}

func h2cHTTPClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// TestRetryConnectFailureOnAnotherHost: one host refuses connections (its
// app stopped listening); with the default policy no request fails, and
// without a policy every other one does, with its reason.
func TestRetryConnectFailureOnAnotherHost(t *testing.T) {
	good := serveHost(t, false, echoBody("good"))
	url := startRetryProxy(t,
		[]string{route("/none/", "c", ""), route("/", "c", istioRetryPolicy)},
		retryCluster{name: "c", ports: []string{freePort(t), good.port}})
	c := &http.Client{Timeout: 10 * time.Second}
	for i := range 20 {
		if code, reason, body := post(t, c, url+"/retry", "r"+strconv.Itoa(i)); code != 200 || body != "good r"+strconv.Itoa(i) {
			t.Fatalf("request %d: %d %s %q, want 200 from the good host", i, code, reason, body)
		}
	}
	failed := 0
	for range 20 {
		code, reason, _ := post(t, c, url+"/none/", "x")
		switch {
		case code == 503 && reason == "upstream_connect_failure":
			failed++
		case code != 200:
			t.Errorf("no policy: %d %s", code, reason)
		}
	}
	if failed != 10 {
		t.Errorf("no policy: %d of 20 requests failed with upstream_connect_failure, want 10 (every other one)", failed)
	}
}

// TestRetryPreviousHostsLeavesTheHashedHost: with ring hash on a header,
// the balancer picks the same host for a key every time; previous_hosts
// makes the retry pick again until it finds another, so requests whose key
// lands on the refusing host still succeed.
func TestRetryPreviousHostsLeavesTheHashedHost(t *testing.T) {
	good := serveHost(t, false, echoBody("good"))
	hashed := strings.Replace(route("/", "c", istioRetryPolicy), "timeout: 10s", "timeout: 10s, hash_policy: [{header: {header_name: x-user}}]", 1)
	url := startRetryProxy(t, []string{hashed},
		retryCluster{name: "c", policy: "RING_HASH", ports: []string{freePort(t), good.port}})
	c := &http.Client{Timeout: 10 * time.Second}
	for i := range 20 {
		req, _ := http.NewRequest("GET", url+"/", nil)
		req.Header.Set("x-user", "user-"+strconv.Itoa(i))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "good " {
			t.Fatalf("user %d: %d %s %q, want 200 from the good host", i, resp.StatusCode, resp.Header.Get("X-Skein-Reason"), b)
		}
	}
}

// TestRetry503OnAnotherHost: a host answering 503 (a terminating pod's
// inbound proxy) is retried on the other, over HTTP/1.1 and HTTP/2 both
// ways, POST bodies intact; the failing host did get the body.
func TestRetry503OnAnotherHost(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h2Up    bool // the cluster speaks h2c
		h2Down  bool // the client speaks h2c
		bodyLen int  // request body size
	}{
		{"http1 to http1", false, false, 100},
		{"http1 to http2", true, false, 100},
		{"http2 to http1", false, true, 100},
		{"http2 to http2", true, true, 100},
		{"http1 to http1, 512 KiB body", false, false, 512 << 10},
		{"http2 to http2, 512 KiB body", true, true, 512 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen atomic.Value
			bad := serveHost(t, tc.h2Up, terminating(&seen))
			good := serveHost(t, tc.h2Up, echoBody("good"))
			url := startRetryProxy(t, []string{route("/", "c", istioRetryPolicy)},
				retryCluster{name: "c", h2: tc.h2Up, ports: []string{bad.port, good.port}})
			c := &http.Client{Timeout: 10 * time.Second}
			if tc.h2Down {
				c = h2cHTTPClient()
			}
			for i := range 6 {
				body := strings.Repeat(strconv.Itoa(i), tc.bodyLen)
				if code, reason, got := post(t, c, url+"/", body); code != 200 || got != "good "+body {
					t.Fatalf("request %d: %d %s %.60q, want 200 from the good host with the body", i, code, reason, got)
				}
			}
			if bad.hits.Load() == 0 || len(seen.Load().(string)) != tc.bodyLen {
				t.Errorf("the failing host got %d requests, last body %d bytes: want some, with the body", bad.hits.Load(), len(seen.Load().(string)))
			}
		})
	}
}

// TestRetryBodyOverBufferLimit: a body larger than the retry buffer
// (1 MiB, Envoy's per_connection_buffer_limit_bytes) is not retried once
// sent: the host answering 503 gets it once and the 503 goes to the
// client; a small body gets its two retries (the only host, so the same).
func TestRetryBodyOverBufferLimit(t *testing.T) {
	bad := serveHost(t, false, terminating(nil))
	url := startRetryProxy(t, []string{route("/", "c", istioRetryPolicy)},
		retryCluster{name: "c", ports: []string{bad.port}})
	c := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		body  string
		tries int64 // requests the host gets
	}{
		{strings.Repeat("b", 1<<20+1), 1},
		{"small", 3},
		{strings.Repeat("b", 1<<20), 3}, // at the limit: kept
	} {
		before := bad.hits.Load()
		if code, reason, _ := post(t, c, url+"/", tc.body); code != 503 || reason != "upstream_connect_failure" {
			t.Errorf("%d bytes: %d %s, want the host's 503", len(tc.body), code, reason)
		}
		if n := bad.hits.Load() - before; n != tc.tries {
			t.Errorf("%d bytes: the host got %d tries, want %d", len(tc.body), n, tc.tries)
		}
	}
}

// TestRetryNotOnceResponseStarted: a response whose head went to the
// client is not retried, even when its body is cut (retry_on reset); a
// 503 from the same host is. One host, so a retry would reach it again.
func TestRetryNotOnceResponseStarted(t *testing.T) {
	var streams, others atomic.Int64
	host := serveHost(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			streams.Add(1)
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // cuts the connection mid-body
		}
		if others.Add(1)%2 == 1 {
			terminating(nil)(w, r) // every other request fails
			return
		}
		echoBody("host")(w, r)
	})
	policy := strings.Replace(istioRetryPolicy, `retry_on: "`, `retry_on: "reset,`, 1)
	url := startRetryProxy(t, []string{route("/", "c", policy)}, retryCluster{name: "c", ports: []string{host.port}})
	c := &http.Client{Timeout: 10 * time.Second}
	for i := range 4 {
		resp, err := c.Get(url + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil || string(b) != "partial" {
			t.Errorf("stream %d: %q %v, want the cut body", i, b, err)
		}
		if n := streams.Load(); n != int64(i+1) {
			t.Fatalf("after %d streams the host got %d: a started response was retried", i+1, n)
		}
		if code, reason, got := post(t, c, url+"/other", "x"); code != 200 || got != "host x" {
			t.Errorf("request %d: %d %s %q, want the 503 retried", i, code, reason, got)
		}
	}
}

// unavailableHealth answers every Check with UNAVAILABLE before any
// message: a trailers-only response.
type unavailableHealth struct {
	healthpb.UnimplementedHealthServer
}

func (unavailableHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return nil, status.Error(codes.Unavailable, "going away")
}

// TestRetryGRPCUnavailable: a gRPC host answering UNAVAILABLE
// trailers-only (retry_on unavailable) is retried on the other; gRPC
// clients see no failure.
func TestRetryGRPCUnavailable(t *testing.T) {
	serve := func(hs healthpb.HealthServer) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		gs := grpc.NewServer()
		healthpb.RegisterHealthServer(gs, hs)
		go gs.Serve(ln)
		t.Cleanup(gs.Stop)
		return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	ok := health.NewServer()
	ok.SetServingStatus("skein", healthpb.HealthCheckResponse_SERVING)
	url := startRetryProxy(t, []string{route("/", "g", istioRetryPolicy)},
		retryCluster{name: "g", h2: true, ports: []string{serve(unavailableHealth{}), serve(ok)}})
	cc, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "skein"})
		cancel()
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("call %d: %v %v, want SERVING from the good host", i, r, err)
		}
	}
}

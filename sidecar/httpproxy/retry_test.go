package httpproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/skeinmesh/skein/sidecar/router"
	"github.com/skeinmesh/skein/sidecar/stats"
	"github.com/skeinmesh/skein/sidecar/upstream"
)

// istioRetry is the retry policy the control plane gives every route by
// default (Istio's).
func istioRetry() *routev3.RetryPolicy {
	return &routev3.RetryPolicy{
		RetryOn:                       "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
		NumRetries:                    wrapperspb.UInt32(2),
		RetriableStatusCodes:          []uint32{503},
		RetryHostPredicate:            []*routev3.RetryPolicy_RetryHostPredicate{{Name: "envoy.retry_host_predicates.previous_hosts"}},
		HostSelectionRetryMaxAttempts: 5,
	}
}

func TestRetriesFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		on   router.RetryOn // the policy's conditions
		f    failure        // how the try failed
		want bool
	}{
		{"connect-failure retries a refused connection", router.RetryConnectFailure, failConnect, true},
		{"connect-failure does not retry a reset", router.RetryConnectFailure, failReset, false},
		{"refused-stream retries REFUSED_STREAM", router.RetryRefusedStream, failRefusedStream, true},
		{"refused-stream does not retry a connect failure", router.RetryRefusedStream, failConnect, false},
		{"reset-before-request retries a reset while sending", router.RetryResetBeforeRequest, failResetBeforeRequest, true},
		{"reset-before-request does not retry after sending", router.RetryResetBeforeRequest, failReset, false},
		{"5xx retries a reset", router.Retry5xx, failReset, true},
		{"gateway-error retries a per-try timeout", router.RetryGatewayError, failPerTryTimeout, true},
		{"reset retries a protocol error", router.RetryReset, failProtocol, true},
		{"retriable-status-codes retries no failure", router.RetryRetriableStatusCodes, failConnect, false},
		{"unavailable retries no failure", router.RetryGRPCUnavailable, failReset, false},
		{"refused-stream retries a stream a GOAWAY left unprocessed", router.RetryRefusedStream,
			(&retryState{}).roundTripFailure(context.Background(), errors.New("http2: Transport received Server's graceful shutdown GOAWAY"), nil), true},
	} {
		if got := retriesFailure(tc.on, tc.f); got != tc.want {
			t.Errorf("%s: retriesFailure = %v", tc.name, got)
		}
	}
}

func TestRetriesResponse(t *testing.T) {
	istio := &router.RetryPolicy{On: router.RetryConnectFailure | router.RetryRefusedStream | router.RetryGRPCUnavailable |
		router.RetryGRPCCancelled | router.RetryRetriableStatusCodes, RetriableStatusCodes: []uint32{503}}
	for _, tc := range []struct {
		name   string
		status int    // HTTP status
		grpc   string // grpc-status in the head, "" for none
		want   bool
	}{
		{"503", 503, "", true},
		{"502 is not listed", 502, "", false},
		{"200", 200, "", false},
		{"gRPC UNAVAILABLE trailers-only", 200, "14", true},
		{"gRPC CANCELLED", 200, "1", true},
		{"gRPC INTERNAL is not listed", 200, "13", false},
		{"gRPC OK", 200, "0", false},
		{"garbage grpc-status", 200, "1x", false},
	} {
		var g []byte
		if tc.grpc != "" {
			g = []byte(tc.grpc)
		}
		if got := retriesResponse(istio, tc.status, g); got != tc.want {
			t.Errorf("%s: retriesResponse = %v", tc.name, got)
		}
	}
}

// refusingAddr is a loopback address nothing listens on.
func refusingAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveBackend serves h on loopback over HTTP/1.1, or h2c when h2.
func serveBackend(t *testing.T, h2 bool, h http.HandlerFunc) string {
	if !h2 {
		return startBackend(t, h).addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go http2Server{}.serve(ln, h)
	return ln.Addr().String()
}

// echo answers 200 with "<name>:<request body>".
func echo(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name+":"+string(b))
	}
}

// TestRetryOnEveryPath sends POSTs through each of the four forwarding
// paths to a cluster of a good host and a failing one (refusing
// connections, answering 503, or gRPC UNAVAILABLE trailers-only): with
// Istio's retry policy every request reaches the good host, body intact.
func TestRetryOnEveryPath(t *testing.T) {
	failing := map[string]func(t *testing.T, h2 bool) string{
		"refused": func(t *testing.T, _ bool) string { return refusingAddr(t) },
		"503": func(t *testing.T, h2 bool) string {
			return serveBackend(t, h2, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(HeaderReason, string(ReasonConnectFailure))
				w.WriteHeader(503)
				io.WriteString(w, "upstream_connect_failure\n")
			})
		},
		"grpc-unavailable": func(t *testing.T, h2 bool) string {
			return serveBackend(t, h2, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				w.Header().Set("Grpc-Status", "14")
				w.WriteHeader(200)
			})
		},
	}
	for _, down := range []string{"h1", "h2"} {
		for _, up := range []string{"h1", "h2"} {
			for kind, bad := range failing {
				t.Run(down+"-to-"+up+"/"+kind, func(t *testing.T) {
					h2 := up == "h2"
					good := serveBackend(t, h2, echo("good"))
					r := toCluster("/", "c")
					r.GetRoute().RetryPolicy = istioRetry()
					p := startProxy(t, inline(routeConfig("rc", vhost("v", []string{"*"}, r))),
						Deps{Clusters: clusterSet{"c": cluster(t, "c", h2, bad(t, h2), good)}})
					var c *http.Client
					if down == "h1" {
						c, _ = client(t, p.addr)
					} else {
						c = h2cClient(t, p.addr)
					}
					for i := range 8 {
						body := "payload-" + itoaT(i)
						resp, err := c.Post("http://svc/x", "text/plain", strings.NewReader(body))
						if err != nil {
							t.Fatal(err)
						}
						got, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 || string(got) != "good:"+body || resp.Header.Get("Grpc-Status") != "" {
							t.Fatalf("request %d: %d %q grpc-status %q (%s), want 200 %q", i, resp.StatusCode, got,
								resp.Header.Get("Grpc-Status"), resp.Header.Get(HeaderReason), "good:"+body)
						}
					}
				})
			}
		}
	}
}

// TestRetryNotWithoutPolicy pins that a route without a retry policy
// passes the failure on, with its reason.
func TestRetryNotWithoutPolicy(t *testing.T) {
	good := serveBackend(t, false, echo("good"))
	p := startProxy(t, inline(routeConfig("rc", vhost("v", []string{"*"}, toCluster("/", "c")))),
		Deps{Clusters: clusterSet{"c": cluster(t, "c", false, refusingAddr(t), good)}})
	c, _ := client(t, p.addr)
	failed := 0
	for range 4 {
		resp, err := c.Get("http://svc/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 503 && resp.Header.Get(HeaderReason) == string(ReasonConnectFailure) {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("%d of 4 requests failed with upstream_connect_failure, want 2 (round robin over a refusing host)", failed)
	}
}

// TestRetryPerTryTimeout: a host that does not answer within
// per_try_timeout is given up for the other.
func TestRetryPerTryTimeout(t *testing.T) {
	slow := serveBackend(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	good := serveBackend(t, false, echo("good"))
	r := toCluster("/", "c")
	r.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", NumRetries: wrapperspb.UInt32(2),
		PerTryTimeout: durationpbMs(200), RetryHostPredicate: istioRetry().RetryHostPredicate}
	p := startProxy(t, inline(routeConfig("rc", vhost("v", []string{"*"}, r))),
		Deps{Clusters: clusterSet{"c": cluster(t, "c", false, slow, good)}})
	c, _ := client(t, p.addr)
	for i := range 4 {
		start := time.Now()
		resp, err := c.Get("http://svc/")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != "good:" {
			t.Fatalf("request %d: %d %q (%s)", i, resp.StatusCode, got, resp.Header.Get(HeaderReason))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("request %d took %v", i, d)
		}
	}
}

// TestHTTP1SteadyStateWithRetryPolicyAllocatesNothing: a retry policy
// (kept request bodies included) costs no allocation when no retry
// happens.
func TestHTTP1SteadyStateWithRetryPolicyAllocatesNothing(t *testing.T) {
	backend := rawBackend(t)
	r := toCluster("/bench/", "c")
	r.GetRoute().RetryPolicy = istioRetry()
	p := startProxy(t, inline(routeConfig("rc", vhost("svc", []string{"svc.example"}, r))),
		Deps{Clusters: clusterSet{"c": cluster(t, "c", false, backend)}, Stats: stats.New()})
	for _, req := range []string{
		"GET /bench/path HTTP/1.1\r\nHost: svc.example\r\n\r\n",
		"POST /bench/path HTTP/1.1\r\nHost: svc.example\r\nContent-Length: 11\r\n\r\nhello world",
		"POST /bench/path HTTP/1.1\r\nHost: svc.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		rc := newRawClient(t, p.addr)
		rc.req = []byte(req)
		for range 100 {
			rc.do(t)
		}
		time.Sleep(10 * time.Millisecond)
		if n := testing.AllocsPerRun(1000, func() { rc.do(t) }); n != 0 {
			t.Errorf("%q: %v allocations per proxied request, want 0", req[:20], n)
		}
	}
}

// TestKeptBody1 pins the HTTP/1 body copy kept for retries: all of it
// while it fits, nothing past RetryBufferLimit.
func TestKeptBody1(t *testing.T) {
	var k keptBody1
	var sink bytes.Buffer
	k.reset(true)
	k.w = &sink
	k.Write([]byte("abc"))
	k.Write([]byte("def"))
	if string(k.buf) != "abcdef" || k.over || sink.String() != "abcdef" {
		t.Errorf("kept %q over %v, sent %q", k.buf, k.over, sink.String())
	}
	k.Write(make([]byte, RetryBufferLimit))
	if !k.over || sink.Len() != 6+RetryBufferLimit {
		t.Errorf("over %v, sent %d", k.over, sink.Len())
	}
	k.free()
	k.reset(false)
	if k.over || k.complete || k.started || len(k.buf) != 0 {
		t.Errorf("reset left %+v", k)
	}
}

func durationpbMs(ms int64) *durationpb.Duration {
	return durationpb.New(time.Duration(ms) * time.Millisecond)
}

// TestPickAvoidsFailedHosts: under previous_hosts a pick, first or retry,
// passes over a host a recent try failed on (another request's included)
// and one this request tried; without the predicate it does not.
func TestPickAvoidsFailedHosts(t *testing.T) {
	cl := cluster(t, "c", false, "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3")
	hosts := cl.Hosts()
	dead := hosts[0]
	for _, tc := range []struct {
		name   string
		policy *router.RetryPolicy
		avoids bool // the marked host is never picked
	}{
		{"previous_hosts", &router.RetryPolicy{PreviousHosts: true, HostSelectionMaxAttempts: 5, NumRetries: 2}, true},
		{"no predicate", &router.RetryPolicy{NumRetries: 2}, false},
	} {
		var other retryState
		other.reset(tc.policy, cl, time.Time{})
		other.markFailed(dead)
		picked := 0
		for range 30 {
			var rs retryState
			rs.reset(tc.policy, cl, time.Time{})
			h, err := rs.pick(cl, &upstream.PickContext{})
			if err != nil {
				t.Fatal(err)
			}
			if h == dead {
				picked++
			}
			rs.done = 1 // a retry: not the host just tried either
			h2, _ := rs.pick(cl, &upstream.PickContext{})
			if tc.policy.PreviousHosts && (h2 == h || h2 == dead) {
				t.Errorf("%s: retry picked %s after %s", tc.name, h2.Address, h.Address)
			}
		}
		if (picked == 0) != tc.avoids {
			t.Errorf("%s: the failed host was picked %d of 30 times", tc.name, picked)
		}
		dead.SetFailedUntil(0)
	}
}

// TestUnprocessedRetriesBeyondNumRetries: a try that reached no
// application (a refused connection, or a peer proxy's
// upstream_connect_failure) is retried beyond num_retries, up to
// MaxUnprocessedRetries more while an untried host is left; other
// failures are not.
func TestUnprocessedRetriesBeyondNumRetries(t *testing.T) {
	p := &router.RetryPolicy{On: router.Retry5xx, NumRetries: 1, BackOffBase: time.Microsecond, BackOffMax: time.Microsecond}
	var addrs []string
	for i := range 8 {
		addrs = append(addrs, "127.0.0.1:"+itoaT(9+i))
	}
	cl := cluster(t, "c", false, addrs...)
	h, err := cl.Pick(&upstream.PickContext{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    failure
		want int // retries allowed in a row
	}{
		{failConnect, 1 + MaxUnprocessedRetries},
		{failPeerConnect, 1 + MaxUnprocessedRetries},
		{failRefusedStream, 1 + MaxUnprocessedRetries},
		{failReset, 1},
		{0, 1}, // a retried response of any other kind
	} {
		var rs retryState
		rs.reset(p, cl, time.Time{})
		n := 0
		for ; n < 20; n++ {
			rs.remember(h) // as pick does: 8 hosts, so one untried is always left
			rs.failed(tc.f, h)
			if !rs.mayRetry() {
				break
			}
			rs.sleep(t.Context())
		}
		rs.release()
		if n != tc.want {
			t.Errorf("failure %d: %d retries, want %d", tc.f, n, tc.want)
		}
	}
	if responseFailure(string(ReasonConnectFailure)) != failPeerConnect || responseFailure([]byte("upstream_reset")) != 0 {
		t.Error("responseFailure does not tell a peer's upstream_connect_failure from other replies")
	}
}

// TestScaleDownFirstRequestSucceeds: five of six hosts are pods whose app
// is gone (their proxies answer 503 upstream_connect_failure), as in a
// scale-down before the caller's EDS catches up; one retry in the policy.
// The first request of each fresh proxy still reaches the live host,
// which only retries beyond num_retries can do (without them it would
// fail four times in six).
func TestScaleDownFirstRequestSucceeds(t *testing.T) {
	gone := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderReason, string(ReasonConnectFailure))
		w.WriteHeader(503)
		io.WriteString(w, "upstream_connect_failure\n")
	}
	for _, down := range []string{"h1", "h2"} {
		for i := range 4 {
			addrs := []string{serveBackend(t, false, echo("live"))}
			for range 5 {
				addrs = append(addrs, serveBackend(t, false, gone))
			}
			pol := istioRetry()
			pol.NumRetries = wrapperspb.UInt32(1)
			r := toCluster("/", "c")
			r.GetRoute().RetryPolicy = pol
			p := startProxy(t, inline(routeConfig("rc", vhost("v", []string{"*"}, r))),
				Deps{Clusters: clusterSet{"c": cluster(t, "c", false, addrs...)}})
			var c *http.Client
			if down == "h1" {
				c, _ = client(t, p.addr)
			} else {
				c = h2cClient(t, p.addr)
			}
			resp, err := c.Post("http://svc/x", "text/plain", strings.NewReader("first"))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(got) != "live:first" {
				t.Fatalf("%s proxy %d: first request %d %q (%s), want 200 live:first", down, i, resp.StatusCode, got, resp.Header.Get(HeaderReason))
			}
		}
	}
}

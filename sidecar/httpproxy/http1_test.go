package httpproxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/skeinmesh/skein/sidecar/upstream"
)

// oneBackend is a proxy with every request routed to one backend.
func oneBackend(t *testing.T, h http.HandlerFunc) (*proxy, *backend) {
	t.Helper()
	b := startBackend(t, h)
	p := startProxy(t, inline(routeConfig("rc", vhost("all", []string{"*"}, toCluster("/", "c")))),
		Deps{Clusters: clusterSet{"c": cluster(t, "c", false, b.addr)}})
	return p, b
}

func TestHTTP1KeepAliveOneUpstreamConnection(t *testing.T) {
	p, b := oneBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Write(append([]byte("got:"), body...))
	})
	c, dials := client(t, p.addr)
	for i := range 100 {
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = c.Get("http://svc/x")
		} else {
			resp, err = c.Post("http://svc/x", "text/plain", strings.NewReader("n"+itoaT(i)))
		}
		if err != nil {
			t.Fatal(i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "got:"
		if i%2 == 1 {
			want += "n" + itoaT(i)
		}
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, body, want)
		}
	}
	if d, n := dials.Load(), b.conns.Load(); d != 1 || n != 1 {
		t.Fatalf("downstream dials %d, upstream connections %d; want 1 and 1 for 100 requests", d, n)
	}
}

func TestHTTP1Framing(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	sum := sha256.Sum256(big)
	p, _ := oneBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("part1,"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part2"))
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.WriteHeader(304)
		case "/head":
			w.Header().Set("Content-Length", "12345")
		case "/big":
			w.Write(big)
		case "/sum":
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			w.Header().Set("X-Len", itoaT(int(n)))
			w.Write(h.Sum(nil))
		}
	})
	c, _ := client(t, p.addr)
	get := func(method, path string, body io.Reader) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://svc"+path, body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(path, err)
		}
		return resp, b
	}
	if resp, b := get("GET", "/chunked", nil); string(b) != "part1,part2" || resp.TransferEncoding == nil {
		t.Errorf("chunked: %q %v", b, resp.TransferEncoding)
	}
	if resp, b := get("GET", "/204", nil); resp.StatusCode != 204 || len(b) != 0 {
		t.Errorf("204: %d %q", resp.StatusCode, b)
	}
	if resp, b := get("GET", "/304", nil); resp.StatusCode != 304 || len(b) != 0 {
		t.Errorf("304: %d %q", resp.StatusCode, b)
	}
	if resp, b := get("HEAD", "/head", nil); resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != 12345 {
		t.Errorf("HEAD: %d %q length %d", resp.StatusCode, b, resp.ContentLength)
	}
	if _, b := get("GET", "/big", nil); sha256.Sum256(b) != sum {
		t.Errorf("large response body corrupted: %d bytes", len(b))
	}
	// A chunked request body (unknown length) and a large one.
	if resp, b := get("POST", "/sum", io.MultiReader(bytes.NewReader(big))); !bytes.Equal(b, sum[:]) || resp.Header.Get("X-Len") != itoaT(len(big)) {
		t.Errorf("large chunked request body: len %s", resp.Header.Get("X-Len"))
	}
	if resp, b := get("POST", "/sum", bytes.NewReader(big)); !bytes.Equal(b, sum[:]) {
		t.Errorf("large request body: len %s", resp.Header.Get("X-Len"))
	}
}

func TestHTTP1RouteByHostAndPath(t *testing.T) {
	a := startBackend(t, named("a"))
	b := startBackend(t, named("b"))
	rc := routeConfig("rc",
		vhost("a", []string{"a.example"}, toCluster("/", "a")),
		vhost("b", []string{"b.example"}, toCluster("/api/", "b"), toCluster("/", "a")),
	)
	p := startProxy(t, inline(rc), Deps{Clusters: clusterSet{"a": cluster(t, "a", false, a.addr), "b": cluster(t, "b", false, b.addr)}})
	c, _ := client(t, p.addr)
	for _, tc := range []struct {
		name, url, want string
	}{
		{"host a", "http://a.example/api/x", "a"},
		{"host b api", "http://b.example/api/x", "b"},
		{"host b other", "http://b.example/web", "a"},
	} {
		resp, err := c.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Backend"); got != tc.want {
			t.Errorf("%s: backend %q, want %q", tc.name, got, tc.want)
		}
	}
	resp, err := c.Get("http://c.example/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get(HeaderReason) != "no_route" || !strings.HasPrefix(string(body), "no_route:") {
		t.Errorf("unknown host: %d %q %q, want 404 no_route", resp.StatusCode, resp.Header.Get(HeaderReason), body)
	}
}

func TestHTTP1WeightedClusters(t *testing.T) {
	a := startBackend(t, named("a"))
	b := startBackend(t, named("b"))
	r := &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{
			WeightedClusters: &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
				{Name: "a", Weight: wrapperspb.UInt32(80)},
				{Name: "b", Weight: wrapperspb.UInt32(20)},
			}},
		}}},
	}
	p := startProxy(t, inline(routeConfig("rc", vhost("all", []string{"*"}, r))),
		Deps{Clusters: clusterSet{"a": cluster(t, "a", false, a.addr), "b": cluster(t, "b", false, b.addr)}})
	c, _ := client(t, p.addr)
	const n = 1000
	for range n {
		resp, err := c.Get("http://svc/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// 80% of 1000: standard deviation ~12.6; 5 of them either way.
	if na, nb := a.reqs.Load(), b.reqs.Load(); na+nb != n || na < 737 || na > 863 {
		t.Fatalf("a got %d, b got %d of %d; want about 800 and 200", na, nb, n)
	}
}

func TestHTTP1RewritesAndHeaderEdits(t *testing.T) {
	b := startBackend(t, named("b"))
	r := toCluster("/old/", "b")
	ra := r.GetRoute()
	ra.PrefixRewrite = "/new/"
	ra.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: "backend.internal"}
	r.RequestHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-added", Value: "yes"}}}
	r.RequestHeadersToRemove = []string{"x-secret"}
	r.ResponseHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-resp", Value: "added"}}}
	r.ResponseHeadersToRemove = []string{"x-backend"}
	p := startProxy(t, inline(routeConfig("rc", vhost("all", []string{"*"}, r))), Deps{Clusters: clusterSet{"b": cluster(t, "b", false, b.addr)}})
	c, _ := client(t, p.addr)
	req, _ := http.NewRequest("GET", "http://svc/old/x%2Fy?q=1", nil)
	req.Header.Set("X-Secret", "s")
	req.Header.Set("X-Kept", "k")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	for _, tc := range []struct{ name, got, want string }{
		{"path seen by the backend", h.Get("X-Path"), "/new/x%2Fy?q=1"},
		{"host seen by the backend", h.Get("X-Host"), "backend.internal"},
		{"added request header", h.Get("Echo-X-Added"), "yes"},
		{"removed request header", h.Get("Echo-X-Secret"), ""},
		{"kept request header", h.Get("Echo-X-Kept"), "k"},
		{"x-forwarded-proto", h.Get("Echo-X-Forwarded-Proto"), "http"},
		{"added response header", h.Get("X-Resp"), "added"},
		{"removed response header", h.Get("X-Backend"), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if id := h.Get("Echo-X-Request-Id"); len(id) != 36 || id[14] != '4' {
		t.Errorf("x-request-id %q, want a v4 UUID", id)
	}
}

func TestHTTP1RedirectAndDirectResponse(t *testing.T) {
	redirect := &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/moved"}},
		Action: &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{
			HostRedirect:         "new.example",
			ResponseCode:         routev3.RedirectAction_FOUND,
			PathRewriteSpecifier: &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: "/here"},
		}},
	}
	direct := &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/direct"}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 418, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "short and stout"}},
		}},
	}
	p := startProxy(t, inline(routeConfig("rc", vhost("all", []string{"*"}, redirect, direct))), Deps{Clusters: clusterSet{}})
	c, dials := client(t, p.addr)
	resp, err := c.Get("http://old.example/moved/x?a=b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "http://new.example/here/x?a=b" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = c.Get("http://old.example/direct")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 418 || string(body) != "short and stout" {
		t.Errorf("direct response: %d %q", resp.StatusCode, body)
	}
	if dials.Load() != 1 {
		t.Errorf("local replies closed the connection: %d dials", dials.Load())
	}
}

func TestHTTP1FailuresSayWhy(t *testing.T) {
	slow := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	reset := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	})
	garbage := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Write([]byte("NOT HTTP AT ALL\r\n\r\n"))
		c.Close()
	})
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	timeout := toCluster("/slow", "slow")
	timeout.GetRoute().Timeout = durationpb.New(200 * time.Millisecond)
	missing := toCluster("/missing", "missing")
	rc := routeConfig("rc", vhost("all", []string{"*"},
		timeout, missing,
		toCluster("/empty", "empty"),
		toCluster("/refused", "refused"),
		toCluster("/reset", "reset"),
		toCluster("/garbage", "garbage"),
	))
	p := startProxy(t, inline(rc), Deps{Clusters: clusterSet{
		"slow":    cluster(t, "slow", false, slow.addr),
		"empty":   cluster(t, "empty", false),
		"refused": cluster(t, "refused", false, closedAddr),
		"reset":   cluster(t, "reset", false, reset.addr),
		"garbage": cluster(t, "garbage", false, garbage.addr),
	}})
	c, _ := client(t, p.addr)
	for _, tc := range []struct {
		name   string
		path   string
		status int
		reason Reason
	}{
		{"no route", "/nothing", 404, ReasonNoRoute},
		{"cluster not found", "/missing", 503, ReasonClusterNotFound},
		{"cluster without hosts", "/empty", 503, ReasonNoHealthyUpstream},
		{"connection refused", "/refused", 503, ReasonConnectFailure},
		{"route timeout", "/slow", 504, ReasonUpstreamTimeout},
		{"upstream closes", "/reset", 503, ReasonUpstreamReset},
		{"upstream speaks garbage", "/garbage", 502, ReasonUpstreamProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp, err := c.Get("http://svc" + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get(HeaderReason) != string(tc.reason) || !strings.HasPrefix(string(body), string(tc.reason)+": ") {
				t.Errorf("%d %s=%q body %q; want %d %s", resp.StatusCode, HeaderReason, resp.Header.Get(HeaderReason), body, tc.status, tc.reason)
			}
			if tc.reason == ReasonUpstreamTimeout && time.Since(start) > 2*time.Second {
				t.Errorf("timeout took %v", time.Since(start))
			}
		})
	}
}

// wsBackend answers an Upgrade: websocket with 101 and then upper-cases
// what it reads, after greeting.
func wsBackend(t *testing.T) *backend {
	return startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			w.WriteHeader(400)
			return
		}
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello\n")
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString(strings.ToUpper(line))
			brw.Flush()
		}
	})
}

func TestHTTP1UpgradeTunnelsBothWays(t *testing.T) {
	b := wsBackend(t)
	hcm := inline(routeConfig("rc", vhost("all", []string{"*"}, toCluster("/", "ws"))))
	hcm.UpgradeConfigs = []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
	p := startProxy(t, hcm, Deps{Clusters: clusterSet{"ws": cluster(t, "ws", false, b.addr)}})
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	if line, _ := br.ReadString('\n'); line != "hello\n" {
		t.Fatalf("server to client: %q", line)
	}
	for _, msg := range []string{"ping\n", "second message\n"} {
		io.WriteString(c, msg)
		if line, _ := br.ReadString('\n'); line != strings.ToUpper(msg) {
			t.Fatalf("echo of %q: %q", msg, line)
		}
	}

	// Without upgrade_configs the upgrade is refused, saying why.
	p2 := startProxy(t, inline(routeConfig("rc", vhost("all", []string{"*"}, toCluster("/", "ws")))), Deps{Clusters: clusterSet{"ws": cluster(t, "ws", false, b.addr)}})
	c2, _ := client(t, p2.addr)
	req, _ := http.NewRequest("GET", "http://svc/chat", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	resp, err = c2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get(HeaderReason) != string(ReasonUpgradeFailed) {
		t.Fatalf("upgrade not configured: %d %q", resp.StatusCode, resp.Header.Get(HeaderReason))
	}
}

func TestHTTP1ExpectContinue(t *testing.T) {
	p, _ := oneBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	})
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("%q %v, want 100 Continue before the body", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestHTTP1Timeouts(t *testing.T) {
	stall := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/midbody" {
			w.Write([]byte("first part"))
			w.(http.Flusher).Flush()
		}
		io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	hcm := inline(routeConfig("rc", vhost("all", []string{"*"}, toCluster("/", "stall"))))
	hcm.StreamIdleTimeout = durationpb.New(300 * time.Millisecond)
	hcm.RequestTimeout = durationpb.New(time.Second)
	p := startProxy(t, hcm, Deps{Clusters: clusterSet{"stall": cluster(t, "stall", false, stall.addr)}})

	t.Run("stream idle before the response head", func(t *testing.T) {
		c, _ := client(t, p.addr)
		start := time.Now()
		resp, err := c.Get("http://svc/nohead")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 504 || resp.Header.Get(HeaderReason) != string(ReasonUpstreamTimeout) || time.Since(start) > 3*time.Second {
			t.Errorf("%d %q after %v", resp.StatusCode, resp.Header.Get(HeaderReason), time.Since(start))
		}
	})
	t.Run("stream idle in the response body", func(t *testing.T) {
		c, _ := client(t, p.addr)
		resp, err := c.Get("http://svc/midbody")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "first part" || err == nil {
			t.Errorf("%d %q %v: want the first part, then the connection cut", resp.StatusCode, body, err)
		}
	})
	t.Run("request body slower than request_timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 100\r\n\r\n")
		for range 6 { // a byte every 200ms: never idle for 300ms, done after 1s
			io.WriteString(c, "x")
			time.Sleep(200 * time.Millisecond)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 408 || resp.Header.Get(HeaderReason) != string(ReasonRequestTimeout) {
			t.Errorf("%d %q", resp.StatusCode, resp.Header.Get(HeaderReason))
		}
	})

	// Regression: the upstream write deadline was the stream idle timeout
	// from the start, failing uploads slower than it while bytes flowed.
	t.Run("active upload longer than the stream idle timeout", func(t *testing.T) {
		echo := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			w.Write([]byte(itoaT(int(n))))
		})
		hcm := inline(routeConfig("rc", vhost("all", []string{"*"}, toCluster("/", "echo"))))
		hcm.StreamIdleTimeout = durationpb.New(300 * time.Millisecond)
		p2 := startProxy(t, hcm, Deps{Clusters: clusterSet{"echo": cluster(t, "echo", false, echo.addr)}})
		c, err := net.Dial("tcp", p2.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 8\r\n\r\n")
		for range 8 {
			time.Sleep(100 * time.Millisecond)
			io.WriteString(c, "x")
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "8" {
			t.Errorf("%d %q %q", resp.StatusCode, resp.Header.Get(HeaderReason), body)
		}
	})
}

func TestHTTP1HashPolicyPinsHost(t *testing.T) {
	a := startBackend(t, named("a"))
	b := startBackend(t, named("b"))
	cl := cluster(t, "ring", false, a.addr, b.addr)
	pb := protoClone(cl.Proto())
	pb.LbPolicy = clusterv3.Cluster_RING_HASH
	ring, err := upstream.Compile(pb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ring.Close)
	r := toCluster("/", "ring")
	r.GetRoute().HashPolicy = []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
		Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: "x-user"},
	}}}
	p := startProxy(t, inline(routeConfig("rc", vhost("all", []string{"*"}, r))), Deps{Clusters: clusterSet{"ring": ring}})
	c, _ := client(t, p.addr)
	seen := map[string]bool{} // backends over all users
	for u := range 20 {
		var first string
		for i := range 5 {
			req, _ := http.NewRequest("GET", "http://svc/", nil)
			req.Header.Set("X-User", "user-"+itoaT(u))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Backend")
			if i == 0 {
				first = got
			} else if got != first {
				t.Fatalf("user %d went to %s then %s", u, first, got)
			}
		}
		seen[first] = true
	}
	if len(seen) != 2 {
		t.Errorf("20 users all hashed to %v", seen)
	}
}

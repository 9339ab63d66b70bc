package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

// TestProtocols sends HTTP/1.1, HTTP/2 (prior knowledge) and gRPC (unary
// and server streaming) through one HCM listener of the built binary, to
// an HTTP/2 web backend and a gRPC backend, routed by path.
func TestProtocols(t *testing.T) {
	// The web backend speaks h2c and says which protocol reached it.
	webLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Proto, r.URL.Path, b)
	})}
	web.Protocols = new(http.Protocols)
	web.Protocols.SetUnencryptedHTTP2(true)
	go web.Serve(webLn)
	t.Cleanup(func() { web.Close() })

	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("skein", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(grpcLn)
	t.Cleanup(gs.Stop)

	port, ap := freePort(t), freePort(t)
	h2 := func(name string, ln net.Listener) []string {
		return []string{
			"  - name: " + name,
			"    type: STATIC",
			"    connect_timeout: 1s",
			"    typed_extension_protocol_options:",
			"      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:",
			`        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
			"        explicit_http_config: {http2_protocol_options: {}}",
			"    load_assignment:",
			"      cluster_name: " + name,
			fmt.Sprintf("      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}]}]", ln.Addr().(*net.TCPAddr).Port),
		}
	}
	cfg := lines(append(append([]string{
		"node: {id: protocols, cluster: test}",
		"admin: {address: {socket_address: {address: 127.0.0.1, port_value: " + ap + "}}}",
		"static_resources:",
		"  listeners:",
		httpListener("http", port,
			`{match: {prefix: /grpc.health.v1.Health/}, route: {cluster: grpc, timeout: 0s}}`,
			`{match: {prefix: /}, route: {cluster: web}}`),
		"  clusters:",
	}, h2("web", webLn)...), h2("grpc", grpcLn)...)...)
	path := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, nil, "-c", path)
	p.admin = "http://127.0.0.1:" + ap
	p.waitReady()
	url := "http://127.0.0.1:" + port

	if code, body := get(url + "/one"); code != 200 || body != "HTTP/2.0 /one " {
		t.Errorf("HTTP/1.1: %d %q, want the backend reached over HTTP/2", code, body)
	}
	h2c := &http.Client{Timeout: 5 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	for i := range 3 {
		resp, err := h2c.Post(url+"/two", "text/plain", stringReader(fmt.Sprint(i)))
		if err != nil {
			t.Fatalf("HTTP/2: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || string(b) != fmt.Sprintf("HTTP/2.0 /two %d", i) {
			t.Errorf("HTTP/2 request %d: %s %d %q", i, resp.Proto, resp.StatusCode, b)
		}
	}

	cc, err := grpc.NewClient("127.0.0.1:"+port, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(cc)
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "skein"}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC unary Check: %v %v", r, err)
	}
	t.Run("trailers-only error status", func(t *testing.T) {
		// grpc-go answers an error before any message as a trailers-only
		// response (one HEADERS frame with END_STREAM, grpc-status in it).
		// Regression: the proxy flushed its head without END_STREAM and
		// ended the stream with an empty DATA frame, so the client saw
		// "Internal: server closed the stream without sending trailers".
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
		if s := status.Convert(err); s.Code() != codes.NotFound || s.Message() != "unknown service" {
			t.Errorf("gRPC status through the proxy: %v, want NotFound %q", err, "unknown service")
		}
	})
	stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "skein"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := stream.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC stream, first message: %v %v", r, err)
	}
	hs.SetServingStatus("skein", healthpb.HealthCheckResponse_NOT_SERVING)
	if r, err := stream.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("gRPC stream, second message: %v %v", r, err)
	}
}

func stringReader(s string) io.Reader { return strings.NewReader(s) }

func containsCode(err error, code string) bool {
	return strings.Contains(status.Code(err).String(), code)
}

package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

var testID = identity{Pod: "echo-7f9c", Namespace: "shop", Version: "v2", Hostname: "echo-7f9c"}

func TestHTTPEcho(t *testing.T) {
	srv := httptest.NewServer(newHandler(testID))
	defer srv.Close()

	tests := []struct {
		name     string
		target   string            // path and query
		header   map[string]string // request headers
		status   int               // status wanted
		minDelay time.Duration     // the answer takes at least this long
		abort    bool              // the connection closes without an answer
	}{
		{name: "plain echo", target: "/catalog/items?page=2", header: map[string]string{"X-Trace": "abc"}, status: 200},
		{name: "status from header", target: "/", header: map[string]string{"x-echo-status": "503"}, status: 503},
		{name: "status from query", target: "/?status=418", status: 418},
		{name: "delay from header", target: "/", header: map[string]string{"x-echo-delay": "200ms"}, status: 200, minDelay: 200 * time.Millisecond},
		{name: "delay and status from query", target: "/?delay=150ms&status=500", status: 500, minDelay: 150 * time.Millisecond},
		{name: "abort", target: "/?abort=true", abort: true},
		{name: "invalid status", target: "/", header: map[string]string{"x-echo-status": "99"}, status: 400},
		{name: "invalid delay", target: "/?delay=soon", status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", srv.URL+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			start := time.Now()
			resp, err := srv.Client().Do(req)
			if tt.abort {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got status %d, want the connection closed", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if d := time.Since(start); d < tt.minDelay {
				t.Errorf("answered after %v, want at least %v", d, tt.minDelay)
			}
			if tt.status == 400 {
				return
			}
			var got echoReply
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			path, query, _ := strings.Cut(tt.target, "?")
			want := echoReply{Pod: "echo-7f9c", Namespace: "shop", Version: "v2", Hostname: "echo-7f9c",
				Protocol: "http", Proto: "HTTP/1.1", Method: "GET", Host: strings.TrimPrefix(srv.URL, "http://"),
				Path: path, Query: query, Status: tt.status}
			if got.RemoteAddr == "" || got.Headers["User-Agent"] == nil {
				t.Errorf("remoteAddr %q, headers %v: want both", got.RemoteAddr, got.Headers)
			}
			for k, v := range tt.header {
				if h := got.Headers[http.CanonicalHeaderKey(k)]; len(h) != 1 || h[0] != v {
					t.Errorf("header %s echoed as %q, want %q", k, h, v)
				}
			}
			got.RemoteAddr, got.Headers = "", nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("echo\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	srv := httptest.NewServer(newHandler(testID))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("/healthz: %d %q, want 200 \"ok\\n\"", resp.StatusCode, body)
	}
}

// TestRun serves HTTP and gRPC on real listeners, as the image does, then
// stops: a request in flight when the stop begins still gets its answer.
func TestRun(t *testing.T) {
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- run(ctx, httpLn, grpcLn, testID) }()
	base := "http://" + httpLn.Addr().String()

	// HTTP/2 without TLS, as a proxy may speak to its backend.
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &h2c}}
	resp, err := client.Get(base + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	var reply echoReply
	json.NewDecoder(resp.Body).Decode(&reply)
	resp.Body.Close()
	if reply.Proto != "HTTP/2.0" {
		t.Errorf("proto %q over h2c, want HTTP/2.0", reply.Proto)
	}

	conn, err := grpc.NewClient(grpcLn.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, service := range []string{"", echoService} {
		hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health of %q: %v %v, want SERVING", service, hc.GetStatus(), err)
		}
	}

	t.Run("grpc echo", func(t *testing.T) {
		in, _ := structpb.NewStruct(map[string]any{"hello": "mesh"})
		out := &structpb.Struct{}
		callCtx := metadata.AppendToOutgoingContext(ctx, "x-trace", "abc")
		if err := conn.Invoke(callCtx, "/skein.echo.v1.Echo/Echo", in, out); err != nil {
			t.Fatal(err)
		}
		got := out.AsMap()
		for k, want := range map[string]any{"pod": "echo-7f9c", "namespace": "shop", "protocol": "grpc",
			"path": "/skein.echo.v1.Echo/Echo", "host": grpcLn.Addr().String()} {
			if got[k] != want {
				t.Errorf("%s = %v, want %v", k, got[k], want)
			}
		}
		if req, _ := got["request"].(map[string]any); req["hello"] != "mesh" {
			t.Errorf("request echoed as %v, want hello: mesh", got["request"])
		}
		if h, _ := got["headers"].(map[string]any); h["x-trace"] == nil {
			t.Errorf("headers %v, want x-trace", got["headers"])
		}
	})
	t.Run("grpc faults", func(t *testing.T) {
		callCtx := metadata.AppendToOutgoingContext(ctx, "x-echo-grpc-status", "14", "x-echo-delay", "100ms")
		start := time.Now()
		err := conn.Invoke(callCtx, "/skein.echo.v1.Echo/Echo", &structpb.Struct{}, &structpb.Struct{})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("error %v, want code Unavailable", err)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("answered after %v, want at least 100ms", d)
		}
	})

	// Stop while a slow request is in flight.
	slow := make(chan int, 1)
	go func() {
		resp, err := http.Get(base + "/slow?delay=300ms")
		if err != nil {
			t.Errorf("request in flight during the stop: %v", err)
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond)
	stop()
	if code := <-slow; code != 200 {
		t.Errorf("request in flight during the stop: status %d, want 200", code)
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return within 5s of the stop")
	}
	if _, err := http.Get(base + "/"); err == nil {
		t.Error("HTTP still answers after the stop")
	}
}

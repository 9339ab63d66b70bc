package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// startEcho serves the echo image's HTTP and gRPC on loopback until the
// test ends; it returns the HTTP base URL and the gRPC address.
func startEcho(t *testing.T) (string, string) {
	t.Helper()
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- run(ctx, httpLn, grpcLn, testID) }()
	t.Cleanup(func() {
		stop()
		if err := <-ran; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return "http://" + httpLn.Addr().String(), grpcLn.Addr().String()
}

// runClient runs `echo <mode> args...` and decodes what it printed: the
// summary, and for load the failure and progress lines before it.
func runClient(t *testing.T, mode string, stdin io.Reader, args ...string) (code int, sum Summary, lines []map[string]json.RawMessage) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code = clientMain(mode, args, stdin, &stdout, &stderr)
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	if mode == "call" {
		if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
			t.Fatalf("call printed %q: %v", stdout.String(), err)
		}
		return code, sum, nil
	}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var line map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("load printed %q: %v", sc.Text(), err)
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 || lines[len(lines)-1]["summary"] == nil {
		t.Fatalf("load's last line is not the summary: %s", stdout.String())
	}
	if err := json.Unmarshal(lines[len(lines)-1]["summary"], &sum); err != nil {
		t.Fatal(err)
	}
	return code, sum, lines[:len(lines)-1]
}

func TestCall(t *testing.T) {
	base, grpcAddr := startEcho(t)
	tests := []struct {
		name        string
		args        []string
		serverProto string // the HTTP version the server saw; "" for gRPC
	}{
		{"http1", []string{"-url", base + "/anything", "-proto", "http1", "-n", "20"}, "HTTP/1.1"},
		{"h2c", []string{"-url", base + "/anything", "-proto", "h2c", "-n", "20"}, "HTTP/2.0"},
		{"grpc", []string{"-grpc", grpcAddr, "-n", "20"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, sum, _ := runClient(t, "call", nil, tt.args...)
			if code != 0 || sum.Requests != 20 || sum.OK != 20 || sum.Failed != 0 || len(sum.Failures) != 0 {
				t.Fatalf("exit %d, summary %+v: want 20 ok", code, sum)
			}
			if sum.Pods[testID.Pod] != 20 || len(sum.Pods) != 1 {
				t.Errorf("pods %v, want %s: 20", sum.Pods, testID.Pod)
			}
			if sum.Callers["127.0.0.1"] != 20 {
				t.Errorf("callers %v, want 127.0.0.1: 20", sum.Callers)
			}
			if sum.Statuses["200"] != 20 {
				t.Errorf("statuses %v, want 200: 20", sum.Statuses)
			}
			if tt.serverProto != "" && sum.ServerProtos[tt.serverProto] != 20 {
				t.Errorf("server protos %v, want %s: 20", sum.ServerProtos, tt.serverProto)
			}
		})
	}
}

func TestCallFailures(t *testing.T) {
	base, grpcAddr := startEcho(t)
	// A proxy's local reply: a status and x-skein-reason, no echo.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("x-skein-reason", "no_healthy_upstream")
		http.Error(w, "no_healthy_upstream: the cluster has no healthy host", http.StatusServiceUnavailable)
	}))
	defer proxy.Close()
	proxyGRPC := startGRPCLocalReply(t, "upstream_connect_failure")
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedURL := "http://" + closed.Addr().String() + "/"
	closed.Close()

	tests := []struct {
		name   string
		args   []string
		status int
		reason string
		error  string
	}{
		{"the backend's 503", []string{"-url", base + "/?status=503"}, 503, "", "status 503"},
		{"a proxy's 503", []string{"-url", proxy.URL}, 503, "no_healthy_upstream", "not an echo reply"},
		{"no answer", []string{"-url", closedURL, "-proto", "h2c"}, 0, "", "refused"},
		{"gRPC UNAVAILABLE", []string{"-grpc", grpcAddr, "-H", "x-echo-grpc-status: 14"}, 14, "", "Unavailable"},
		{"a proxy's gRPC UNAVAILABLE", []string{"-grpc", proxyGRPC}, 14, "upstream_connect_failure", "Unavailable"},
		{"timeout", []string{"-url", base + "/?delay=1s", "-timeout", "100ms"}, 0, "", "deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, sum, _ := runClient(t, "call", nil, append(tt.args, "-n", "3")...)
			if code != 1 || sum.Failed != 3 || sum.OK != 0 || len(sum.Failures) != 3 {
				t.Fatalf("exit %d, summary %+v: want 3 failures", code, sum)
			}
			f := sum.Failures[0]
			if f.Status != tt.status || f.Reason != tt.reason || !strings.Contains(f.Error, tt.error) {
				t.Errorf("failure %+v: want status %d, reason %q, error containing %q", f, tt.status, tt.reason, tt.error)
			}
		})
	}
}

// startGRPCLocalReply serves gRPC answering every call UNAVAILABLE with
// x-skein-reason in a trailers-only response, as the proxy's local replies.
func startGRPCLocalReply(t *testing.T, reason string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		stream.SetTrailer(metadata.Pairs("x-skein-reason", reason))
		return status.Error(codes.Unavailable, reason+": no connection")
	}))
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func TestClientFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-url", "http://x/", "-grpc", "x:1"},
		{"-url", "http://x/", "-proto", "h3"},
		{"-url", "http://x/", "-n", "0"},
		{"-url", "http://x/", "extra"},
	} {
		var out, errs bytes.Buffer
		if code := clientMain("call", args, nil, &out, &errs); code != 2 {
			t.Errorf("call %q: exit %d, want 2 (stderr %q)", args, code, errs.String())
		}
	}
}

// TestLoadUntilStdinEnds: load runs at its rate until stdin closes, as
// `kubectl exec -i` closing its stdin stops it, and reports every request.
func TestLoadUntilStdinEnds(t *testing.T) {
	base, grpcAddr := startEcho(t)
	for _, target := range [][]string{{"-url", base + "/anything"}, {"-url", base + "/anything", "-proto", "h2c"}, {"-grpc", grpcAddr}} {
		t.Run(target[len(target)-1], func(t *testing.T) {
			stdin, closeStdin := io.Pipe()
			time.AfterFunc(time.Second, func() { closeStdin.Close() })
			start := time.Now()
			code, sum, lines := runClient(t, "load", stdin, append(target, "-rps", "50", "-stop-on-eof")...)
			if d := time.Since(start); d < time.Second || d > 3*time.Second {
				t.Errorf("load ran %v, want about 1s", d)
			}
			if code != 0 || sum.Failed != 0 || sum.OK < 40 || sum.OK > 60 || sum.OK != sum.Requests {
				t.Errorf("exit %d, summary %+v: want about 50 ok and no failure", code, sum)
			}
			if len(lines) != 0 {
				t.Errorf("lines before the summary %v, want none", lines)
			}
		})
	}
}

// TestLoadReportsFailuresAsTheyHappen: each failure is a line of its own,
// progress comes on time, and -duration ends the run.
func TestLoadReportsFailuresAsTheyHappen(t *testing.T) {
	base, _ := startEcho(t)
	c, err := newCaller(&clientOptions{url: base + "/?status=503", proto: "http1", timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	sum := load(ctx, c, 20, 300*time.Millisecond, &out)
	if sum.Failed < 10 || sum.OK != 0 {
		t.Fatalf("summary %+v: want about 14 failures", sum)
	}
	var failures, progress int
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		switch {
		case strings.HasPrefix(line, `{"failure":`):
			failures++
			if !strings.Contains(line, `"status":503`) {
				t.Errorf("failure line %s: want status 503", line)
			}
		case strings.HasPrefix(line, `{"progress":`):
			progress++
		case strings.HasPrefix(line, `{"summary":`):
		default:
			t.Errorf("unexpected line %s", line)
		}
	}
	if failures != sum.Failed || progress != 2 {
		t.Errorf("%d failure lines and %d progress lines, want %d and 2", failures, progress, sum.Failed)
	}
}

package health

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestReadiness(t *testing.T) {
	h := &Handler{}
	if code := get(t, h, ReadyPath); code != http.StatusServiceUnavailable {
		t.Errorf("before SetReady: %d, want 503", code)
	}
	h.SetReady(true)
	if code := get(t, h, ReadyPath); code != http.StatusOK {
		t.Errorf("after SetReady: %d, want 200", code)
	}
	if code := get(t, h, "/app-health/none/readyz"); code != http.StatusNotFound {
		t.Errorf("unknown probe: %d, want 404", code)
	}
}

func TestAppProbes(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/headers":
			if r.Header.Get("X-Probe") != "yes" || r.Host != "app.example" {
				w.WriteHeader(http.StatusBadRequest)
			}
		case "/slow":
			time.Sleep(1500 * time.Millisecond)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer app.Close()
	appPort := port(t, app.Listener.Addr())

	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := grpchealth.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(grpcLn) }()
	defer srv.Stop()
	grpcPort := port(t, grpcLn.Addr())
	down := "down"

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := port(t, closed.Addr())
	closed.Close()

	h := &Handler{Probes: map[string]AppProbe{
		"/app-health/web/readyz":    {HTTPGet: &HTTPGet{Path: "/ok", Port: appPort}},
		"/app-health/web/livez":     {HTTPGet: &HTTPGet{Path: "/fails", Port: appPort}},
		"/app-health/web/startupz":  {HTTPGet: &HTTPGet{Path: "headers", Port: appPort, HTTPHeaders: []Header{{"X-Probe", "yes"}, {"Host", "app.example"}}}},
		"/app-health/slow/readyz":   {HTTPGet: &HTTPGet{Path: "/slow", Port: appPort}, TimeoutSeconds: 1},
		"/app-health/gone/readyz":   {HTTPGet: &HTTPGet{Port: closedPort}},
		"/app-health/grpc/readyz":   {GRPC: &GRPCCheck{Port: grpcPort}},
		"/app-health/grpc/livez":    {GRPC: &GRPCCheck{Port: grpcPort, Service: &down}},
		"/app-health/nogrpc/readyz": {GRPC: &GRPCCheck{Port: closedPort}},
	}}
	cases := []struct {
		// path is asked of the health port; want is the status it answers.
		path string
		want int
	}{
		{"/app-health/web/readyz", http.StatusNoContent},
		{"/app-health/web/livez", http.StatusInternalServerError},
		{"/app-health/web/startupz", http.StatusOK},
		{"/app-health/slow/readyz", http.StatusServiceUnavailable},
		{"/app-health/gone/readyz", http.StatusServiceUnavailable},
		{"/app-health/grpc/readyz", http.StatusOK},
		{"/app-health/grpc/livez", http.StatusServiceUnavailable},
		{"/app-health/nogrpc/readyz", http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(strings.TrimPrefix(tc.path, "/app-health/"), func(t *testing.T) {
			if got := get(t, h, tc.path); got != tc.want {
				t.Errorf("%s answered %d, want %d", tc.path, got, tc.want)
			}
		})
	}
}

func TestParseAppProbes(t *testing.T) {
	cases := []struct {
		name string
		// in is SKEIN_APP_PROBES; want is the number of probes, or -1 for an error.
		in   string
		want int
	}{
		{"empty", "", 0},
		{"http and grpc", `{"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080,"scheme":"HTTP"}},"/app-health/api/livez":{"grpc":{"port":9090}}}`, 2},
		{"not JSON", `{`, -1},
		{"both kinds", `{"/app-health/web/readyz":{"httpGet":{"port":8080},"grpc":{"port":9090}}}`, -1},
		{"neither kind", `{"/app-health/web/readyz":{}}`, -1},
		{"port 0", `{"/app-health/web/readyz":{"httpGet":{"port":0}}}`, -1},
		{"bad scheme", `{"/app-health/web/readyz":{"httpGet":{"port":80,"scheme":"FTP"}}}`, -1},
		{"path outside /app-health", `{"/admin":{"httpGet":{"port":80}}}`, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAppProbes(tc.in)
			if tc.want < 0 {
				if err == nil {
					t.Fatalf("accepted %s", tc.in)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %d probes, %v; want %d", len(got), err, tc.want)
			}
		})
	}
}

func get(t *testing.T, h http.Handler, path string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code
}

func port(t *testing.T, a net.Addr) int {
	t.Helper()
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

package health

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// ReadyPath is where the proxy reports its own readiness.
const ReadyPath = "/healthz/ready"

// Handler answers the health port's requests. Its zero value is not ready
// and has no app probes.
type Handler struct {
	ready atomic.Bool
	// Probes are the app's probes by path; nil means none.
	Probes map[string]AppProbe
	// AppHost is the address the app's probes go to; empty means 127.0.0.1.
	AppHost string
}

// SetReady marks the proxy ready, or not.
func (h *Handler) SetReady(ready bool) { h.ready.Store(ready) }

// ServeHTTP answers ReadyPath with 200 once ready and 503 before, and an
// app probe's path with the app's own status code (SERVING is 200 for
// gRPC), or 503 with the reason when the app could not be asked.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == ReadyPath {
		if h.ready.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	probe, ok := h.Probes[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	timeout := time.Duration(probe.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	host := h.AppHost
	if host == "" {
		host = "127.0.0.1"
	}
	var code int
	var err error
	if probe.HTTPGet != nil {
		code, err = probeHTTP(ctx, host, probe.HTTPGet)
	} else {
		code, err = probeGRPC(ctx, host, probe.GRPC)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(code)
}

// probeTransport never reuses connections (each probe is a fresh check, as
// the kubelet's are) and, like the kubelet, does not verify an HTTPS app's
// certificate.
var probeTransport = &http.Transport{
	DisableKeepAlives: true,
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the kubelet does not verify probe certificates either
}

func probeHTTP(ctx context.Context, host string, get *HTTPGet) (int, error) {
	scheme := "http"
	if strings.EqualFold(get.Scheme, "HTTPS") {
		scheme = "https"
	}
	path := get.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(get.Port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "skein-proxy-probe")
	for _, h := range get.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := probeTransport.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func probeGRPC(ctx context.Context, host string, check *GRPCCheck) (int, error) {
	conn, err := grpc.NewClient(net.JoinHostPort(host, strconv.Itoa(check.Port)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	service := ""
	if check.Service != nil {
		service = *check.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return 0, err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return http.StatusServiceUnavailable, nil
	}
	return http.StatusOK, nil
}

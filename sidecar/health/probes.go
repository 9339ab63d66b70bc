// Package health serves skein-proxy's health port (15020): the proxy's own
// readiness, which the kubelet and `skein-proxy wait` poll, and the app's
// HTTP and gRPC probes, which the injector points at this port so that they
// keep working when the app only accepts mutual TLS.
package health

import (
	"encoding/json"
	"fmt"
	"strings"
)

// AppProbe is one of the app's original probes, as the injector records it
// (JSON in the pod's skein.io/original-probes annotation, handed to the
// proxy as SKEIN_APP_PROBES): exactly one of HTTPGet and GRPC is set.
type AppProbe struct {
	// HTTPGet is an HTTP GET against the app; its port is a number.
	HTTPGet *HTTPGet `json:"httpGet,omitempty"`
	// GRPC is a grpc.health.v1 check against the app.
	GRPC *GRPCCheck `json:"grpc,omitempty"`
	// TimeoutSeconds bounds the probe; 0 means one second, the kubelet's default.
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
}

// HTTPGet is the part of a Kubernetes HTTPGetAction the proxy uses.
type HTTPGet struct {
	// Path is the request path; empty means "/".
	Path string `json:"path,omitempty"`
	// Port is the app's port.
	Port int `json:"port"`
	// Scheme is HTTP or HTTPS; empty means HTTP.
	Scheme string `json:"scheme,omitempty"`
	// HTTPHeaders are sent with the request.
	HTTPHeaders []Header `json:"httpHeaders,omitempty"`
}

// Header is one request header of an HTTP probe.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// GRPCCheck is a Kubernetes GRPCAction.
type GRPCCheck struct {
	// Port is the app's gRPC port.
	Port int `json:"port"`
	// Service is the service name sent in the check; nil or empty means the server.
	Service *string `json:"service,omitempty"`
}

// ParseAppProbes reads the probes by health-port path, such as
// /app-health/web/readyz. An empty string means no probes.
func ParseAppProbes(s string) (map[string]AppProbe, error) {
	probes := map[string]AppProbe{}
	if strings.TrimSpace(s) == "" {
		return probes, nil
	}
	if err := json.Unmarshal([]byte(s), &probes); err != nil {
		return nil, fmt.Errorf("SKEIN_APP_PROBES: %w", err)
	}
	for path, p := range probes {
		if !strings.HasPrefix(path, "/app-health/") {
			return nil, fmt.Errorf("SKEIN_APP_PROBES: path %q does not start with /app-health/", path)
		}
		if (p.HTTPGet == nil) == (p.GRPC == nil) {
			return nil, fmt.Errorf("SKEIN_APP_PROBES: %s: want exactly one of httpGet and grpc", path)
		}
		port := 0
		if p.HTTPGet != nil {
			port = p.HTTPGet.Port
			if s := strings.ToUpper(p.HTTPGet.Scheme); s != "" && s != "HTTP" && s != "HTTPS" {
				return nil, fmt.Errorf("SKEIN_APP_PROBES: %s: scheme %q is not HTTP or HTTPS", path, p.HTTPGet.Scheme)
			}
		} else {
			port = p.GRPC.Port
		}
		if port < 1 || port > 65535 {
			return nil, fmt.Errorf("SKEIN_APP_PROBES: %s: port %d is not 1 to 65535", path, port)
		}
	}
	return probes, nil
}

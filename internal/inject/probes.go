package inject

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// AppProbe is one of the app's probes as it was before the rewrite: what
// the proxy runs against the app, over loopback, when the kubelet asks for
// the probe's path on the health port. Exactly one of HTTPGet and GRPC is set.
type AppProbe struct {
	// HTTPGet is the original HTTP probe, its port resolved to a number.
	HTTPGet *corev1.HTTPGetAction `json:"httpGet,omitempty"`
	// GRPC is the original gRPC health check.
	GRPC *corev1.GRPCAction `json:"grpc,omitempty"`
	// TimeoutSeconds is the original probe's timeout; 0 means the kubelet's default.
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
}

// AppHealthPath is the path on the proxy's health port that stands for
// container's probe of kind "livez", "readyz" or "startupz".
func AppHealthPath(container, kind string) string {
	return "/app-health/" + container + "/" + kind
}

// rewriteProbes points the HTTP and gRPC probes of containers at the
// proxy's health port, in place, and returns the originals by path. A probe
// with an explicit host (which does not probe the pod) or a named port the
// container does not declare (which can never succeed) is left alone, as
// are TCP and exec probes: the kubelet's TCP connection is accepted by the
// proxy's inbound listener and an exec probe does not use the network.
func rewriteProbes(containers []corev1.Container, health int32) map[string]AppProbe {
	originals := map[string]AppProbe{}
	for i := range containers {
		c := &containers[i]
		for _, p := range []struct {
			probe **corev1.Probe
			kind  string
		}{{&c.LivenessProbe, "livez"}, {&c.ReadinessProbe, "readyz"}, {&c.StartupProbe, "startupz"}} {
			orig, ok := originalProbe(*p.probe, c.Ports)
			if !ok {
				continue
			}
			path := AppHealthPath(c.Name, p.kind)
			originals[path] = orig
			rewritten := (*p.probe).DeepCopy()
			rewritten.ProbeHandler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromInt32(health), Scheme: corev1.URISchemeHTTP,
			}}
			*p.probe = rewritten
		}
	}
	return originals
}

// originalProbe is what the proxy needs to run probe itself, and whether
// the probe is one the proxy takes over.
func originalProbe(probe *corev1.Probe, ports []corev1.ContainerPort) (AppProbe, bool) {
	switch {
	case probe == nil:
		return AppProbe{}, false
	case probe.HTTPGet != nil:
		get := probe.HTTPGet.DeepCopy()
		if get.Host != "" {
			return AppProbe{}, false
		}
		if get.Scheme == "" {
			get.Scheme = corev1.URISchemeHTTP // the API server's default, spelt out for the proxy
		}
		if get.Port.Type == intstr.String {
			n, ok := portNamed(ports, get.Port.StrVal)
			if !ok {
				return AppProbe{}, false
			}
			get.Port = intstr.FromInt32(n)
		}
		return AppProbe{HTTPGet: get, TimeoutSeconds: probe.TimeoutSeconds}, true
	case probe.GRPC != nil:
		return AppProbe{GRPC: probe.GRPC.DeepCopy(), TimeoutSeconds: probe.TimeoutSeconds}, true
	}
	return AppProbe{}, false
}

func portNamed(ports []corev1.ContainerPort, name string) (int32, bool) {
	for _, p := range ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

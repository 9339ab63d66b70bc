package inject

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skeinmesh/skein/internal/meshconfig"
)

// Names of what Mutate adds to a pod.
const (
	// ProxyContainerName is the proxy's container.
	ProxyContainerName = "skein-proxy"
	// InitContainerName is the init container that installs the iptables rules.
	InitContainerName = "skein-init"
	// TokenVolumeName is the projected service-account token of the proxy.
	TokenVolumeName = "skein-token"
	// ProxyDataVolumeName is the proxy's writable scratch space.
	ProxyDataVolumeName = "skein-proxy-data"
	// XtablesLockVolumeName is skein-init's writable /run.
	XtablesLockVolumeName = "skein-xtables-lock"
)

// The proxy's files.
const (
	// TokenDir is where the proxy finds its token, in the file "token".
	TokenDir = "/var/run/secrets/skein"
	// TokenAudience is the audience of the proxy's token; the xDS server
	// accepts only tokens for it.
	TokenAudience = "skein"
	// TokenExpirationSeconds is the lifetime the kubelet requests for the
	// token; it renews it at 80% of that.
	TokenExpirationSeconds = 43200
	// ProxyDataDir is the mount point of ProxyDataVolumeName.
	ProxyDataDir = "/var/lib/skein"
)

// Ports are the proxy's ports. Zero values are not meaningful; start from
// DefaultPorts.
type Ports struct {
	// Outbound receives the pod's outgoing TCP connections (15001).
	Outbound int32
	// Inbound receives the pod's incoming TCP connections (15006).
	Inbound int32
	// Admin is the proxy's admin interface, on localhost only (15000).
	Admin int32
	// Health serves the proxy's readiness and the app's rewritten probes (15020).
	Health int32
	// Metrics serves Prometheus metrics (15090).
	Metrics int32
}

// DefaultPorts are the ports of ARCHITECTURE.md.
func DefaultPorts() Ports {
	return Ports{Outbound: 15001, Inbound: 15006, Admin: 15000, Health: 15020, Metrics: 15090}
}

// Config is everything Decide and Mutate need besides the pod. Start from
// DefaultConfig or NewConfig; the zero value is not meaningful.
type Config struct {
	// ProxyImage is the image of the skein-proxy container (mesh setting proxyImage).
	ProxyImage string
	// InitImage is the image of the skein-init container (mesh setting initImage).
	InitImage string
	// ProxyUID is the UID and GID the proxy runs as, whose own traffic
	// skein-init's rules let through uncaptured. Default 7117.
	ProxyUID int64
	// Ports are the proxy's ports. Default DefaultPorts().
	Ports Ports
	// ProxyResources are the proxy's requests and limits unless the pod's
	// annotations say otherwise. Default: requests 10m CPU and 40Mi memory,
	// limits 2 CPU and 256Mi memory.
	ProxyResources corev1.ResourceRequirements
	// InitResources are skein-init's requests and limits. Default: requests
	// 10m CPU and 10Mi memory, limits 100m CPU and 50Mi memory.
	InitResources corev1.ResourceRequirements
	// NativeSidecars injects the proxy as a native sidecar. The caller sets
	// it from the API server's version (NativeSidecarsSupported); a pod's
	// skein.io/native-sidecar annotation overrides it. Default true.
	NativeSidecars bool
	// TrustDomain is the SPIFFE trust domain (mesh setting trustDomain).
	// Default cluster.local.
	TrustDomain string
	// XDSAddress is the host:port of the operator's xDS server. Default
	// skein-operator.skein-system.svc:15012.
	XDSAddress string
	// OperatorNamespace is the operator's namespace, where nothing is
	// injected. Default skein-system.
	OperatorNamespace string
	// Version is the injector's version, recorded in the status annotation.
	// Default "dev".
	Version string
}

// DefaultConfig is NewConfig of the default mesh settings.
func DefaultConfig() Config {
	return NewConfig(meshconfig.Defaults())
}

// NewConfig is the default Config with the images and trust domain of the
// mesh-wide settings s.
func NewConfig(s meshconfig.Settings) Config {
	return Config{
		ProxyImage: s.ProxyImage,
		InitImage:  s.InitImage,
		ProxyUID:   7117,
		Ports:      DefaultPorts(),
		ProxyResources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("40Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("2"),
				corev1.ResourceMemory: resource.MustParse("256Mi"),
			},
		},
		InitResources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("10Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("50Mi"),
			},
		},
		NativeSidecars:    true,
		TrustDomain:       s.TrustDomain,
		XDSAddress:        "skein-operator.skein-system.svc:15012",
		OperatorNamespace: "skein-system",
		Version:           "dev",
	}
}

// validate reports a Config that cannot produce a working pod.
func (c Config) validate() error {
	var errs []error
	if c.ProxyImage == "" {
		errs = append(errs, errors.New("inject config: proxy image is empty"))
	}
	if c.InitImage == "" {
		errs = append(errs, errors.New("inject config: init image is empty"))
	}
	if c.ProxyUID < 1 || c.ProxyUID >= 1<<32-1 {
		errs = append(errs, fmt.Errorf("inject config: proxy UID %d is not a non-root ID", c.ProxyUID))
	}
	p := c.Ports
	for _, n := range []int32{p.Outbound, p.Inbound, p.Admin, p.Health, p.Metrics} {
		if n < 1 || n > 65535 {
			errs = append(errs, errors.New("inject config: a proxy port is not from 1 to 65535"))
			break
		}
	}
	for _, r := range []corev1.ResourceRequirements{c.ProxyResources, c.InitResources} {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := r.Requests[name]
			if lim, ok := r.Limits[name]; ok && hasReq && req.Cmp(lim) > 0 {
				errs = append(errs, fmt.Errorf("inject config: %s request %s is more than its limit %s", name, req.String(), lim.String()))
			}
		}
	}
	if c.XDSAddress == "" || c.TrustDomain == "" {
		errs = append(errs, errors.New("inject config: xDS address and trust domain must be set"))
	}
	return errors.Join(errs...)
}

// NativeSidecarsSupported reports whether an API server of this version
// (the Major and Minor of its /version, such as "1" and "29+") runs native
// sidecars by default: Kubernetes 1.29 and later. An unreadable version
// gives false, the choice that works everywhere.
func NativeSidecarsSupported(major, minor string) bool {
	ma, err1 := strconv.Atoi(strings.TrimRight(major, "+"))
	mi, err2 := strconv.Atoi(strings.TrimRight(minor, "+"))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > 1 || (ma == 1 && mi >= 29)
}

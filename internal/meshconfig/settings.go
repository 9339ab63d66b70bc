// Package meshconfig holds the mesh-wide settings that live in the operator's
// ConfigMap: what they mean, their defaults, how a ConfigMap's data is parsed
// and checked, and the store the rest of the operator reads them from.
package meshconfig

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// ConfigMapName is the default name of the mesh-wide ConfigMap.
const ConfigMapName = "skein-config"

// Keys of the ConfigMap's data.
const (
	KeyProxyImage            = "proxyImage"
	KeyInitImage             = "initImage"
	KeyTrustDomain           = "trustDomain"
	KeyOutboundTrafficPolicy = "outboundTrafficPolicy"
	KeyDefaultAuthorization  = "defaultAuthorization"
	KeyAccessLogging         = "accessLogging"
	KeyTracingEndpoint       = "tracingEndpoint"
	KeyWebhookFailurePolicy  = "webhookFailurePolicy"
	KeyRestartUnmeshedPods   = "restartUnmeshedPods"
)

// OutboundTrafficPolicy says what a proxy does with a connection to a
// destination the mesh does not know.
type OutboundTrafficPolicy string

const (
	// OutboundAllowAny passes unknown destinations through unchanged.
	OutboundAllowAny OutboundTrafficPolicy = "ALLOW_ANY"
	// OutboundRegistryOnly refuses connections to unknown destinations.
	OutboundRegistryOnly OutboundTrafficPolicy = "REGISTRY_ONLY"
)

// DefaultAuthorization is what happens to a request that no
// AuthorizationPolicy speaks about.
type DefaultAuthorization string

const (
	// AuthorizationAllow lets such requests through, as Istio does.
	AuthorizationAllow DefaultAuthorization = "ALLOW"
	// AuthorizationDeny refuses them: every call must be allowed by a policy.
	AuthorizationDeny DefaultAuthorization = "DENY"
)

// FailurePolicy is the admission webhook's failure policy.
type FailurePolicy string

const (
	// FailurePolicyFail refuses pod creation in meshed namespaces while the webhook is down.
	FailurePolicyFail FailurePolicy = "Fail"
	// FailurePolicyIgnore lets pods be created without a sidecar while the webhook is down.
	FailurePolicyIgnore FailurePolicy = "Ignore"
)

// Settings are the mesh-wide settings. The zero value is not meaningful; start
// from Defaults.
type Settings struct {
	// ProxyImage is the image of the injected skein-proxy container.
	ProxyImage string
	// InitImage is the image of the injected skein-init container.
	InitImage string
	// TrustDomain is the SPIFFE trust domain of workload identities.
	TrustDomain string
	// OutboundTrafficPolicy is ALLOW_ANY or REGISTRY_ONLY.
	OutboundTrafficPolicy OutboundTrafficPolicy
	// DefaultAuthorization is ALLOW or DENY.
	DefaultAuthorization DefaultAuthorization
	// AccessLogging turns on one log line per request in every proxy.
	AccessLogging bool
	// TracingEndpoint is the host:port of an OTLP/gRPC collector; empty turns tracing off.
	TracingEndpoint string
	// WebhookFailurePolicy is the injection webhook's failure policy.
	WebhookFailurePolicy FailurePolicy
	// RestartUnmeshedPods turns on, mesh-wide, the restart of a workload
	// whose pods run without the proxy they should have (created while the
	// injection webhook was unreachable); a namespace's annotation
	// skein.io/restart-unmeshed-pods overrides it. Off by default: such pods
	// are then only reported.
	RestartUnmeshedPods bool
}

// Defaults returns the settings in force when the ConfigMap is absent, and
// for every key it leaves out.
func Defaults() Settings {
	return Settings{
		ProxyImage:            "docker.io/skeinmesh/skein-proxy:dev",
		InitImage:             "docker.io/skeinmesh/skein-init:dev",
		TrustDomain:           "cluster.local",
		OutboundTrafficPolicy: OutboundAllowAny,
		DefaultAuthorization:  AuthorizationAllow,
		AccessLogging:         false,
		TracingEndpoint:       "",
		WebhookFailurePolicy:  FailurePolicyFail,
		RestartUnmeshedPods:   false,
	}
}

// SPIFFEID is the identity of the workloads running as serviceAccount in namespace.
func (s Settings) SPIFFEID(namespace, serviceAccount string) string {
	return "spiffe://" + s.TrustDomain + "/ns/" + namespace + "/sa/" + serviceAccount
}

// KeyError is a ConfigMap key whose value cannot be used.
type KeyError struct {
	// Key is the ConfigMap data key.
	Key string
	// Value is the value found there.
	Value string
	// Reason says what is wrong and what is allowed.
	Reason string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("key %q: invalid value %q: %s", e.Key, e.Value, e.Reason)
}

// Parse reads a ConfigMap's data over the defaults. It checks every key and
// returns all that are wrong, each as a *KeyError, joined; on error the
// returned Settings must not be used.
func Parse(data map[string]string) (Settings, error) {
	s := Defaults()
	var errs []error
	bad := func(key, value, reason string) {
		errs = append(errs, &KeyError{Key: key, Value: value, Reason: reason})
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		v := strings.TrimSpace(data[key])
		switch key {
		case KeyProxyImage, KeyInitImage:
			if v == "" || strings.ContainsAny(v, " \t\n") {
				bad(key, v, "must be an image reference such as registry.example/skein-proxy:v1")
				continue
			}
			if key == KeyProxyImage {
				s.ProxyImage = v
			} else {
				s.InitImage = v
			}
		case KeyTrustDomain:
			if msgs := validation.IsDNS1123Subdomain(v); len(msgs) > 0 {
				bad(key, v, "must be a DNS name such as cluster.local: "+strings.Join(msgs, "; "))
				continue
			}
			s.TrustDomain = v
		case KeyOutboundTrafficPolicy:
			switch p := OutboundTrafficPolicy(v); p {
			case OutboundAllowAny, OutboundRegistryOnly:
				s.OutboundTrafficPolicy = p
			default:
				bad(key, v, "must be ALLOW_ANY or REGISTRY_ONLY")
			}
		case KeyDefaultAuthorization:
			switch a := DefaultAuthorization(v); a {
			case AuthorizationAllow, AuthorizationDeny:
				s.DefaultAuthorization = a
			default:
				bad(key, v, "must be ALLOW or DENY")
			}
		case KeyAccessLogging, KeyRestartUnmeshedPods:
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(key, v, `must be "true" or "false"`)
				continue
			}
			if key == KeyAccessLogging {
				s.AccessLogging = b
			} else {
				s.RestartUnmeshedPods = b
			}
		case KeyTracingEndpoint:
			if v != "" {
				if err := checkHostPort(v); err != nil {
					bad(key, v, "must be empty (tracing off) or host:port of an OTLP/gRPC collector: "+err.Error())
					continue
				}
			}
			s.TracingEndpoint = v
		case KeyWebhookFailurePolicy:
			switch p := FailurePolicy(v); p {
			case FailurePolicyFail, FailurePolicyIgnore:
				s.WebhookFailurePolicy = p
			default:
				bad(key, v, "must be Fail or Ignore")
			}
		default:
			bad(key, v, "unknown key; known keys are "+strings.Join(knownKeys(), ", "))
		}
	}
	if len(errs) > 0 {
		return Settings{}, errors.Join(errs...)
	}
	return s, nil
}

func knownKeys() []string {
	return []string{KeyProxyImage, KeyInitImage, KeyTrustDomain, KeyOutboundTrafficPolicy,
		KeyDefaultAuthorization, KeyAccessLogging, KeyTracingEndpoint, KeyWebhookFailurePolicy, KeyRestartUnmeshedPods}
}

func checkHostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("missing host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// BadKeys lists the keys named by the *KeyErrors in err, in order.
func BadKeys(err error) []string {
	var keys []string
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			keys = append(keys, BadKeys(e)...)
		}
		return keys
	}
	var ke *KeyError
	if errors.As(err, &ke) {
		keys = append(keys, ke.Key)
	}
	return keys
}

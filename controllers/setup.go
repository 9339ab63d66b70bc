// Package controllers holds Skein's reconcilers: one per mesh kind, one for
// the mesh-wide settings, and one for pods left without the proxy.
package controllers

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/skeinmesh/skein/internal/meshconfig"
)

// Options configures the reconcilers.
type Options struct {
	// ConfigNamespace is the namespace of the mesh-wide ConfigMap, the operator's own.
	ConfigNamespace string
	// ConfigName is the name of the mesh-wide ConfigMap. Empty means meshconfig.ConfigMapName.
	ConfigName string
	// Settings holds the mesh-wide settings in force; Setup makes one when nil.
	Settings *meshconfig.Store
	// VerifyWebhookBeforeRestart makes the restart of unmeshed pods wait
	// until the injection webhook injects again (checked with a dry-run pod).
	// Set it when the operator serves the webhook.
	VerifyWebhookBeforeRestart bool
	// WebhookConfiguration is the injection webhook's
	// MutatingWebhookConfiguration, whose failurePolicy the mesh-wide
	// webhookFailurePolicy sets; empty when the operator does not serve it.
	WebhookConfiguration string
	// ControlPlane connects the reconcilers to the xDS server: statuses
	// report the proxies, and mesh changes trigger pushes. Nil without one;
	// Programmed then stays Pending.
	ControlPlane *ControlPlane
}

func (o Options) configKey() types.NamespacedName {
	name := o.ConfigName
	if name == "" {
		name = meshconfig.ConfigMapName
	}
	return types.NamespacedName{Namespace: o.ConfigNamespace, Name: name}
}

// CacheOptions limits the manager's cache to what the reconcilers read: of
// all ConfigMaps, only the mesh-wide one.
func CacheOptions(o Options) cache.Options {
	key := o.configKey()
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {
				Namespaces: map[string]cache.Config{key.Namespace: {}},
				Field:      fields.OneTermEqualSelector("metadata.name", key.Name),
			},
		},
	}
}

func unmeshedPodReconciler(c client.Client, mgr ctrl.Manager, status statusWriter, o Options, changed <-chan event.GenericEvent) *UnmeshedPodReconciler {
	r := &UnmeshedPodReconciler{Client: c, reader: mgr.GetAPIReader(), recorder: status.recorder, settings: o.Settings, settingsChanged: changed}
	if o.VerifyWebhookBeforeRestart {
		r.webhookInjects = func(ctx context.Context, namespace string) bool { return webhookInjects(ctx, c, namespace) }
	}
	return r
}

// Setup registers the cache indexes and every reconciler with mgr.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) error {
	if o.ConfigNamespace == "" {
		return fmt.Errorf("the namespace of the mesh-wide ConfigMap is not set")
	}
	if o.Settings == nil {
		o.Settings = meshconfig.NewStore()
	}
	if err := addIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("add cache indexes: %w", err)
	}
	for _, m := range []prometheus.Collector{meshConfigValid, unmeshedPodsGauge} {
		if err := metrics.Registry.Register(m); err != nil && !errors.As(err, &prometheus.AlreadyRegisteredError{}) {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	// One channel per reconciler that follows the mesh-wide settings.
	meshServicesChanged, namespacesChanged := make(chan event.GenericEvent, 1), make(chan event.GenericEvent, 1)
	c := mgr.GetClient()
	status := statusWriter{client: c, recorder: mgr.GetEventRecorder("skein-operator")}
	// And one per mesh kind that follows the proxies' reports.
	proxies := []chan event.GenericEvent{make(chan event.GenericEvent, 1), make(chan event.GenericEvent, 1), make(chan event.GenericEvent, 1)}
	settingsChanged := []chan<- event.GenericEvent{meshServicesChanged, namespacesChanged}
	var reporter ProxyReporter
	if o.ControlPlane != nil {
		reporter = o.ControlPlane.Proxies
		meshSettingsChanged := make(chan event.GenericEvent, 1)
		settingsChanged = append(settingsChanged, meshSettingsChanged)
		if err := mgr.Add(controlPlaneRunnable(mgr, o.ControlPlane, proxies, meshSettingsChanged)); err != nil {
			return fmt.Errorf("add the control plane's watch: %w", err)
		}
		if o.ControlPlane.Serve != nil {
			if err := mgr.Add(everyReplica(o.ControlPlane.Serve)); err != nil {
				return fmt.Errorf("add the xDS server: %w", err)
			}
		}
	}
	reconcilers := []interface{ SetupWithManager(ctrl.Manager) error }{
		&MeshConfigReconciler{Client: c, recorder: status.recorder, key: o.configKey(), settings: o.Settings,
			changed: settingsChanged, webhookConfiguration: o.WebhookConfiguration, reader: mgr.GetAPIReader()},
		&MeshServiceReconciler{Client: c, status: status, settings: o.Settings, settingsChanged: meshServicesChanged,
			proxies: reporter, proxiesChanged: proxies[0]},
		unmeshedPodReconciler(c, mgr, status, o, namespacesChanged),
		&TrafficPolicyReconciler{Client: c, status: status, proxies: reporter, proxiesChanged: proxies[1]},
		&AuthorizationPolicyReconciler{Client: c, status: status, proxies: reporter, proxiesChanged: proxies[2]},
	}
	for _, r := range reconcilers {
		if err := r.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("set up %T: %w", r, err)
		}
	}
	return nil
}

package controllers

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/skeinmesh/skein/internal/meshconfig"
)

// Event reasons on the mesh-wide ConfigMap.
const (
	// ReasonMeshConfigApplied: new mesh-wide settings are in force.
	ReasonMeshConfigApplied = "MeshConfigApplied"
	// ReasonInvalidMeshConfig: the ConfigMap has a bad value; the last good settings stay in force.
	ReasonInvalidMeshConfig = "InvalidMeshConfig"
)

// meshConfigValid is 1 while the mesh-wide ConfigMap is valid (or absent)
// and 0 while the operator runs on the last good settings because it is not.
var meshConfigValid = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "skein_mesh_config_valid",
	Help: "1 when the mesh-wide ConfigMap was applied, 0 when its last change was refused and the last good settings stay in force.",
})

// MeshConfigReconciler puts the mesh-wide ConfigMap's settings in force when
// they are valid, and keeps the last good ones, with an Event and a log line
// naming each bad key, when they are not.
type MeshConfigReconciler struct {
	client.Client
	recorder events.EventRecorder
	// key is the namespace and name of the ConfigMap.
	key      types.NamespacedName
	settings *meshconfig.Store
	// changed receive an event each time new settings are put in force, one
	// channel per reconciler that depends on them.
	changed []chan<- event.GenericEvent
	// webhookConfiguration is the MutatingWebhookConfiguration whose
	// failurePolicy follows webhookFailurePolicy; empty leaves it alone.
	webhookConfiguration string
	// reader reads it straight from the API server: one object, read on a
	// ConfigMap change, is not worth a cache (nor the RBAC to watch them all).
	reader client.Reader
}

// +kubebuilder:rbac:groups="",namespace=skein-system,resources=configmaps,verbs=get;list;watch

// Reconcile reads the ConfigMap and applies it; a missing ConfigMap means defaults.
func (r *MeshConfigReconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	cm := &corev1.ConfigMap{}
	err := r.Get(ctx, r.key, cm)
	var next meshconfig.Settings
	switch {
	case apierrors.IsNotFound(err):
		cm = nil
		next = meshconfig.Defaults()
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("get mesh-wide ConfigMap %s: %w", r.key, err)
	default:
		next, err = meshconfig.Parse(cm.Data)
		if err != nil {
			meshConfigValid.Set(0)
			for _, key := range meshconfig.BadKeys(err) {
				log.Error(err, "Refused the mesh-wide ConfigMap; the last good settings stay in force", "configMap", klog.KObj(cm), "key", key)
			}
			r.recorder.Eventf(cm, nil, corev1.EventTypeWarning, ReasonInvalidMeshConfig, actionReconcile,
				"refused, the last good settings stay in force: %v", err)
			return ctrl.Result{}, nil
		}
	}
	meshConfigValid.Set(1)
	if err := r.applyFailurePolicy(ctx, next.WebhookFailurePolicy); err != nil {
		return ctrl.Result{}, err
	}
	if !r.settings.Set(next) {
		return ctrl.Result{}, nil
	}
	log.Info("Mesh-wide settings in force", "configMap", r.key, "settings", fmt.Sprintf("%+v", next))
	if cm != nil {
		r.recorder.Eventf(cm, nil, corev1.EventTypeNormal, ReasonMeshConfigApplied, actionReconcile, "new mesh-wide settings are in force")
	}
	// Never blocks: a notification already pending covers this one, since
	// its handler reads the settings in force when it runs; and on a replica
	// that is not the leader nothing consumes it until it becomes one, when
	// every MeshService and namespace is reconciled anyway.
	for _, ch := range r.changed {
		select {
		case ch <- event.GenericEvent{Object: &corev1.ConfigMap{}}:
		default:
		}
	}
	return ctrl.Result{}, nil
}

// applyFailurePolicy sets policy as the failurePolicy of every webhook of
// the injection webhook's configuration, when the operator serves it and it
// exists; it is checked at every reconcile, so that an apply that put the
// manifest's value back is corrected with the next ConfigMap event.
func (r *MeshConfigReconciler) applyFailurePolicy(ctx context.Context, policy meshconfig.FailurePolicy) error {
	if r.webhookConfiguration == "" {
		return nil
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := r.reader.Get(ctx, types.NamespacedName{Name: r.webhookConfiguration}, cfg); err != nil {
		return client.IgnoreNotFound(err)
	}
	orig := cfg.DeepCopy()
	want := admissionregistrationv1.FailurePolicyType(policy)
	changed := false
	for i := range cfg.Webhooks {
		if p := cfg.Webhooks[i].FailurePolicy; p == nil || *p != want {
			cfg.Webhooks[i].FailurePolicy = &want
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := r.Patch(ctx, cfg, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("set failurePolicy %s on MutatingWebhookConfiguration %s: %w", policy, r.webhookConfiguration, err)
	}
	ctrl.LoggerFrom(ctx).Info("Injection webhook failure policy set", "configuration", r.webhookConfiguration, "failurePolicy", policy)
	return nil
}

// SetupWithManager registers the reconciler for the one ConfigMap it reads.
func (r *MeshConfigReconciler) SetupWithManager(mgr ctrl.Manager) error {
	isOurs := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == r.key.Namespace && o.GetName() == r.key.Name
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("meshconfig").
		For(&corev1.ConfigMap{}, builder.WithPredicates(isOurs)).
		// Every replica needs the settings (the injection webhook serves on
		// all of them), not just the leader.
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false)}).
		Complete(r)
}

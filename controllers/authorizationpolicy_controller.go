package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// AuthorizationPolicyReconciler checks an AuthorizationPolicy's target and
// reports it in its status.
type AuthorizationPolicyReconciler struct {
	client.Client
	status statusWriter
	// proxies reports what the control plane's proxies did with the object; nil without one.
	proxies ProxyReporter
	// proxiesChanged fires when the proxies' reports may have changed.
	proxiesChanged <-chan event.GenericEvent
}

// +kubebuilder:rbac:groups=mesh.skein.io,resources=authorizationpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=mesh.skein.io,resources=authorizationpolicies/status,verbs=get;update;patch

// Reconcile brings one AuthorizationPolicy's status up to date.
func (r *AuthorizationPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ap := &meshv1alpha1.AuthorizationPolicy{}
	if err := r.Get(ctx, req.NamespacedName, ap); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var target *meshv1alpha1.MeshService
	var svc *corev1.Service
	if ap.Spec.TargetRef != nil {
		var err error
		if target, svc, err = getTarget(ctx, r.Client, ap.Namespace, *ap.Spec.TargetRef); err != nil {
			return ctrl.Result{}, fmt.Errorf("resolve target of AuthorizationPolicy %s: %w", klog.KObj(ap), err)
		}
	}

	orig := ap.DeepCopy()
	next := authorizationPolicyStatus(ap, target, svc)
	next.Conditions, next.Proxies = withProxies(next.Conditions, ap.Generation, r.proxies, KindAuthorizationPolicy, ap.Namespace, ap.Name)
	next.Conditions = mergeConditions(orig.Status.Conditions, next.Conditions)
	ap.Status = next
	return ctrl.Result{}, r.status.write(ctx, orig, ap, orig.Status, ap.Status, orig.Status.Conditions, ap.Status.Conditions)
}

// SetupWithManager registers the reconciler: it runs for AuthorizationPolicies
// and for the MeshServices and Services they target.
func (r *AuthorizationPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.AuthorizationPolicy{}).
		Watches(&meshv1alpha1.MeshService{}, handler.EnqueueRequestsFromMapFunc(r.forMeshService)).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.forService)).
		WatchesRawSource(proxiesSource(r.proxiesChanged, r.Client, &meshv1alpha1.AuthorizationPolicyList{})).
		Complete(r)
}

// forMeshService maps a MeshService to the policies that target it.
func (r *AuthorizationPolicyReconciler) forMeshService(ctx context.Context, o client.Object) []reconcile.Request {
	return r.targeting(ctx, o.GetNamespace(), o.GetName())
}

// forService maps a Service to the policies whose target meshes it.
func (r *AuthorizationPolicyReconciler) forService(ctx context.Context, o client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, ms := range meshServicesOf(ctx, r.Client, o.GetNamespace(), o.GetName()) {
		reqs = append(reqs, r.targeting(ctx, ms.Namespace, ms.Name)...)
	}
	return reqs
}

// targeting lists the policies in namespace that target MeshService name.
func (r *AuthorizationPolicyReconciler) targeting(ctx context.Context, namespace, name string) []reconcile.Request {
	return listRequests(ctx, r.Client, &meshv1alpha1.AuthorizationPolicyList{}, client.InNamespace(namespace), client.MatchingFields{indexTargetName: name})
}

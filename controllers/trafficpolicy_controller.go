package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
)

// TrafficPolicyReconciler checks a TrafficPolicy's target, backends and
// failover services, settles conflicts between policies, and reports it all
// in its status.
type TrafficPolicyReconciler struct {
	client.Client
	status statusWriter
	// proxies reports what the control plane's proxies did with the object; nil without one.
	proxies ProxyReporter
	// proxiesChanged fires when the proxies' reports may have changed.
	proxiesChanged <-chan event.GenericEvent
}

// +kubebuilder:rbac:groups=mesh.skein.io,resources=trafficpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=mesh.skein.io,resources=trafficpolicies/status,verbs=get;update;patch

// Reconcile brings one TrafficPolicy's status up to date.
func (r *TrafficPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	tp := &meshv1alpha1.TrafficPolicy{}
	if err := r.Get(ctx, req.NamespacedName, tp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	obs, err := r.observe(ctx, tp)
	if err != nil {
		return ctrl.Result{}, err
	}

	orig := tp.DeepCopy()
	next := trafficPolicyStatus(tp, obs)
	next.Conditions, next.Proxies = withProxies(next.Conditions, tp.Generation, r.proxies, KindTrafficPolicy, tp.Namespace, tp.Name)
	next.Conditions = mergeConditions(orig.Status.Conditions, next.Conditions)
	tp.Status = next
	return ctrl.Result{}, r.status.write(ctx, orig, tp, orig.Status, tp.Status, orig.Status.Conditions, tp.Status.Conditions)
}

// observe reads the target, its Service, the policies that share its
// target, and the MeshServices its backends and failover name.
func (r *TrafficPolicyReconciler) observe(ctx context.Context, tp *meshv1alpha1.TrafficPolicy) (trafficPolicyObservation, error) {
	obs := trafficPolicyObservation{services: map[types.NamespacedName]*meshv1alpha1.MeshService{}}
	target, svc, err := getTarget(ctx, r.Client, tp.Namespace, tp.Spec.TargetRef)
	if err != nil {
		return obs, fmt.Errorf("resolve target of TrafficPolicy %s: %w", klog.KObj(tp), err)
	}
	obs.target, obs.targetService = target, svc

	rivals := &meshv1alpha1.TrafficPolicyList{}
	if err := r.List(ctx, rivals, client.InNamespace(tp.Namespace), client.MatchingFields{indexTargetName: string(tp.Spec.TargetRef.Name)}); err != nil {
		return obs, fmt.Errorf("list policies sharing the target of TrafficPolicy %s: %w", klog.KObj(tp), err)
	}
	obs.claimedBy = mesh.OlderClaimant(tp, rivals.Items)

	for _, key := range backendRefs(tp) {
		ms := &meshv1alpha1.MeshService{}
		err := r.Get(ctx, key, ms)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return obs, fmt.Errorf("resolve backend %s of TrafficPolicy %s: %w", key, klog.KObj(tp), err)
		}
		obs.services[key] = ms
	}
	return obs, nil
}

// getTarget returns the MeshService a policy targets and its Service; either
// is nil when it does not exist. The Service is read only when the port check
// needs it.
func getTarget(ctx context.Context, c client.Client, namespace string, ref meshv1alpha1.PolicyTargetReference) (*meshv1alpha1.MeshService, *corev1.Service, error) {
	ms := &meshv1alpha1.MeshService{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: string(ref.Name)}, ms); err != nil {
		return nil, nil, client.IgnoreNotFound(err)
	}
	if ref.Port == nil || len(ms.Spec.Ports) > 0 {
		return ms, nil, nil
	}
	svc := &corev1.Service{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ms.ServiceName()}, svc); err != nil {
		return ms, nil, client.IgnoreNotFound(err)
	}
	return ms, svc, nil
}

// SetupWithManager registers the reconciler: it runs for TrafficPolicies,
// for the policies that share a target with a changed one, and for the
// MeshServices and Services they refer to.
func (r *TrafficPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.TrafficPolicy{}).
		Watches(&meshv1alpha1.TrafficPolicy{}, handler.EnqueueRequestsFromMapFunc(r.rivals)).
		Watches(&meshv1alpha1.MeshService{}, handler.EnqueueRequestsFromMapFunc(r.forMeshService)).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.forService)).
		WatchesRawSource(proxiesSource(r.proxiesChanged, r.Client, &meshv1alpha1.TrafficPolicyList{})).
		Complete(r)
}

// rivals maps a TrafficPolicy to the policies with the same target, whose
// conflict may have started or ended.
func (r *TrafficPolicyReconciler) rivals(ctx context.Context, o client.Object) []reconcile.Request {
	tp := o.(*meshv1alpha1.TrafficPolicy)
	return r.policiesBy(ctx, client.InNamespace(tp.Namespace), client.MatchingFields{indexTargetName: string(tp.Spec.TargetRef.Name)})
}

// forMeshService maps a MeshService to the policies that target it or send traffic to it.
func (r *TrafficPolicyReconciler) forMeshService(ctx context.Context, o client.Object) []reconcile.Request {
	reqs := r.policiesBy(ctx, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexTargetName: o.GetName()})
	return append(reqs, r.policiesBy(ctx, client.MatchingFields{indexBackendKey: client.ObjectKeyFromObject(o).String()})...)
}

// forService maps a Service to the policies whose target meshes it.
func (r *TrafficPolicyReconciler) forService(ctx context.Context, o client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, ms := range meshServicesOf(ctx, r.Client, o.GetNamespace(), o.GetName()) {
		reqs = append(reqs, r.policiesBy(ctx, client.InNamespace(ms.Namespace), client.MatchingFields{indexTargetName: ms.Name})...)
	}
	return reqs
}

func (r *TrafficPolicyReconciler) policiesBy(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	return listRequests(ctx, r.Client, &meshv1alpha1.TrafficPolicyList{}, opts...)
}

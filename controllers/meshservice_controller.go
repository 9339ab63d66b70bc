package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// MeshServiceReconciler resolves a MeshService's Service, pods and subsets
// and reports them in its status.
type MeshServiceReconciler struct {
	client.Client
	status   statusWriter
	settings *meshconfig.Store
	// proxies reports what the control plane's proxies did with the object; nil without one.
	proxies ProxyReporter
	// proxiesChanged fires when the proxies' reports may have changed.
	proxiesChanged <-chan event.GenericEvent
	// settingsChanged fires when new mesh-wide settings are in force.
	settingsChanged <-chan event.GenericEvent
}

// +kubebuilder:rbac:groups=mesh.skein.io,resources=meshservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=mesh.skein.io,resources=meshservices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=services;pods;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one MeshService's status up to date.
func (r *MeshServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ms := &meshv1alpha1.MeshService{}
	if err := r.Get(ctx, req.NamespacedName, ms); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	obs, err := r.observe(ctx, ms)
	if err != nil {
		return ctrl.Result{}, err
	}

	orig := ms.DeepCopy()
	next := meshServiceStatus(ms, obs)
	next.Conditions, next.Proxies = withProxies(next.Conditions, ms.Generation, r.proxies, KindMeshService, ms.Namespace, ms.Name)
	next.Conditions = mergeConditions(orig.Status.Conditions, next.Conditions)
	ms.Status = next
	return ctrl.Result{}, r.status.write(ctx, orig, ms, orig.Status, ms.Status, orig.Status.Conditions, ms.Status.Conditions)
}

// observe reads the MeshService's namespace, its Service and the live pods
// it selects.
func (r *MeshServiceReconciler) observe(ctx context.Context, ms *meshv1alpha1.MeshService) (meshServiceObservation, error) {
	obs := meshServiceObservation{settings: r.settings.Current()}
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, types.NamespacedName{Name: ms.Namespace}, ns); err != nil {
		return obs, fmt.Errorf("get namespace of MeshService %s: %w", klog.KObj(ms), err)
	}
	obs.namespace = ns
	svc := &corev1.Service{}
	err := r.Get(ctx, types.NamespacedName{Namespace: ms.Namespace, Name: ms.ServiceName()}, svc)
	switch {
	case apierrors.IsNotFound(err):
		return obs, nil
	case err != nil:
		return obs, fmt.Errorf("get Service of MeshService %s: %w", klog.KObj(ms), err)
	}
	obs.service = svc
	if len(svc.Spec.Selector) == 0 {
		return obs, nil
	}
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(ms.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return obs, fmt.Errorf("list pods of MeshService %s: %w", klog.KObj(ms), err)
	}
	obs.pods = livePods(pods.Items)
	return obs, nil
}

// SetupWithManager registers the reconciler: it runs for MeshServices, for
// the Services and pods behind them and for their namespace (whose
// skein.io/inject decides which pods count as unmeshed), and for all of them
// when the mesh-wide settings change.
func (r *MeshServiceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshService{}).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.forService)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.forPod)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.forNamespace)).
		WatchesRawSource(source.Channel(r.settingsChanged, handler.EnqueueRequestsFromMapFunc(r.all))).
		WatchesRawSource(proxiesSource(r.proxiesChanged, r.Client, &meshv1alpha1.MeshServiceList{})).
		Complete(r)
}

// forService maps a Service to the MeshServices that mesh it.
func (r *MeshServiceReconciler) forService(ctx context.Context, o client.Object) []reconcile.Request {
	return meshServicesOf(ctx, r.Client, o.GetNamespace(), o.GetName())
}

// forPod maps a pod to the MeshServices whose Service selects it.
func (r *MeshServiceReconciler) forPod(ctx context.Context, o client.Object) []reconcile.Request {
	svcs := &corev1.ServiceList{}
	if err := r.List(ctx, svcs, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "List Services to map a pod", "pod", klog.KObj(o))
		return nil
	}
	var reqs []reconcile.Request
	for _, svc := range svcs.Items {
		if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(o.GetLabels())) {
			reqs = append(reqs, meshServicesOf(ctx, r.Client, svc.Namespace, svc.Name)...)
		}
	}
	return reqs
}

// forNamespace maps a namespace to the MeshServices in it.
func (r *MeshServiceReconciler) forNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	return listRequests(ctx, r.Client, &meshv1alpha1.MeshServiceList{}, client.InNamespace(o.GetName()))
}

// all maps a settings change to every MeshService.
func (r *MeshServiceReconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	return listRequests(ctx, r.Client, &meshv1alpha1.MeshServiceList{})
}

// meshServicesOf lists the MeshServices that mesh Service namespace/name.
func meshServicesOf(ctx context.Context, c client.Client, namespace, name string) []reconcile.Request {
	return listRequests(ctx, c, &meshv1alpha1.MeshServiceList{}, client.InNamespace(namespace), client.MatchingFields{indexServiceName: name})
}

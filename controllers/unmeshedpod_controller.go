package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/skeinmesh/skein/internal/inject"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// actionRestart is the action of the Event recorded on a restarted workload.
const actionRestart = "Restart"

// actionInject is the action of the Events about injection decisions.
const actionInject = "Inject"

// unmeshedPodsGauge counts, per namespace, the live pods that should run
// with the Skein proxy and do not.
var unmeshedPodsGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "skein_unmeshed_pods",
	Help: "Live pods that injection covers but that run without the Skein proxy, typically created while the injection webhook was unreachable.",
}, []string{"namespace"})

// UnmeshedPodReconciler makes sure no pod is silently left out of the mesh,
// whatever the webhook's failure policy. It reconciles one namespace at a
// time: each pod there that should have the proxy and does not (see
// unmeshed) gets one Warning Event Unmeshed, is counted in
// skein_unmeshed_pods, and, when restartUnmeshedPods (mesh-wide, or the
// namespace's skein.io/restart-unmeshed-pods) is on, has its Deployment,
// StatefulSet or DaemonSet restarted once, as kubectl rollout restart does.
// Bare pods and pods of Jobs or other controllers are never deleted, only
// reported.
//
// "Once per pod" is kept by the pod's annotation skein.io/unmeshed-reported,
// written before the Event is recorded: it survives operator restarts and
// leader changes, unlike memory, and costs no Event listing. "Once per
// outage" for restarts is kept by the workload's template annotation
// skein.io/restartedAt (see restartDue).
//
// The restart's premise is that the webhook is back: before restarting, the
// reconciler asks the API server to admit, as a dry run, a pod that opts in,
// and restarts only when it comes back injected (webhookInjects); until
// then it looks again every few seconds. Should the webhook still not
// inject the replacement pods, restartDue keeps the workload from being
// restarted in a loop.
type UnmeshedPodReconciler struct {
	client.Client
	// reader reads workloads straight from the API server, so that the
	// operator does not cache every ReplicaSet of the cluster for the rare
	// restart.
	reader   client.Reader
	recorder events.EventRecorder
	settings *meshconfig.Store
	// settingsChanged fires when new mesh-wide settings are in force.
	settingsChanged <-chan event.GenericEvent
	// now is the clock; time.Now when nil.
	now func() time.Time
	// webhookInjects, when set, tells whether the injection webhook injects
	// pods of a namespace now; restarts wait until it does. Nil restarts at
	// once, for an operator that does not serve the webhook itself.
	webhookInjects func(ctx context.Context, namespace string) bool
}

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch;create
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=get
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile reports and counts the unmeshed pods of one namespace, and
// restarts their workloads where that is turned on.
func (r *UnmeshedPodReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, req.NamespacedName, ns); err != nil {
		if apierrors.IsNotFound(err) {
			unmeshedPodsGauge.DeleteLabelValues(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(ns.Name)); err != nil {
		return ctrl.Result{}, fmt.Errorf("list pods of namespace %s: %w", ns.Name, err)
	}
	settings := r.settings.Current()
	cfg := inject.NewConfig(settings)
	type found struct {
		pod      *corev1.Pod
		decision inject.Decision
	}
	var unmeshedPods []found
	for i := range pods.Items {
		if d, ok := unmeshed(&pods.Items[i], ns, cfg); ok {
			unmeshedPods = append(unmeshedPods, found{&pods.Items[i], d})
		}
	}
	unmeshedPodsGauge.WithLabelValues(ns.Name).Set(float64(len(unmeshedPods)))

	// A restart is worth it only once the webhook injects again; until
	// then, look again shortly.
	var result ctrl.Result
	restart := restartEnabled(ns, settings)
	if restart && len(unmeshedPods) > 0 && r.webhookInjects != nil && !r.webhookInjects(ctx, ns.Name) {
		restart, result.RequeueAfter = false, 5*time.Second
	}
	workloads := map[types.UID]client.Object{}
	var errs []error
	for i := range pods.Items {
		if err := r.reportSkipped(ctx, &pods.Items[i], ns, cfg); err != nil {
			errs = append(errs, err)
		}
	}
	for _, u := range unmeshedPods {
		if err := r.handle(ctx, u.pod, u.decision, restart, workloads); err != nil {
			errs = append(errs, err)
		}
	}
	return result, errors.Join(errs...)
}

// reportSkipped turns the reason the webhook left on a pod it did not
// inject (inject.AnnotationSkipped, such as HostNetwork or PodOptedOut) into
// a Normal Event on the pod, once, as the injector's decision would have
// recorded it had the pod existed at admission.
func (r *UnmeshedPodReconciler) reportSkipped(ctx context.Context, pod *corev1.Pod, ns *corev1.Namespace, cfg inject.Config) error {
	reason := pod.Annotations[inject.AnnotationSkipped]
	if reason == "" || pod.Annotations[AnnotationSkipReported] != "" || pod.DeletionTimestamp != nil {
		return nil
	}
	message := "not injected with the Skein proxy: " + reason
	if d := inject.Decide(pod, ns, cfg); string(d.Reason) == reason && d.Message != "" {
		message = "not injected with the Skein proxy: " + d.Message
	}
	// As for Unmeshed: the mark first, conditional on the version read.
	orig := pod.DeepCopy()
	metav1.SetMetaDataAnnotation(&pod.ObjectMeta, AnnotationSkipReported, r.clock().UTC().Format(time.RFC3339))
	if err := r.Patch(ctx, pod, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("mark skipped pod %s as reported: %w", klog.KObj(pod), err)
	}
	r.recorder.Eventf(pod, nil, corev1.EventTypeNormal, reason, actionInject, "%s", message)
	return nil
}

// webhookInjects reports whether the injection webhook answers through the
// API server now: it asks the API server to admit, without creating it, a
// pod of namespace that opts in, and looks for the injector's mark on the
// answer.
func webhookInjects(ctx context.Context, c client.Client, namespace string) bool {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "skein-webhook-check-", Namespace: namespace,
			Annotations: map[string]string{inject.AnnotationInject: "enabled"},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "default",
			Containers:         []corev1.Container{{Name: "check", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
		ctrl.LoggerFrom(ctx).V(1).Info("The injection webhook does not answer yet", "err", err.Error())
		return false
	}
	_, ok := pod.Annotations[inject.AnnotationStatus]
	return ok
}

// handle restarts an unmeshed pod's workload when restart is set and that
// is due, and reports the pod the first time it is seen. workloads holds
// the workloads already read in this reconcile, by the UID of the pod's
// controller.
func (r *UnmeshedPodReconciler) handle(ctx context.Context, pod *corev1.Pod, d inject.Decision, restart bool, workloads map[types.UID]client.Object) error {
	_, reported := pod.Annotations[AnnotationUnmeshedReported]
	if reported && !restart {
		return nil
	}
	owner := metav1.GetControllerOf(pod)
	var workload client.Object
	if owner != nil {
		var ok bool
		if workload, ok = workloads[owner.UID]; !ok {
			w, err := r.workloadOf(ctx, pod.Namespace, owner)
			if err != nil {
				return fmt.Errorf("find the workload of unmeshed pod %s: %w", klog.KObj(pod), err)
			}
			workloads[owner.UID], workload = w, w
		}
	}
	if restart && workload != nil {
		if err := r.restart(ctx, workload, pod); err != nil {
			return err
		}
	}
	if reported {
		return nil
	}
	// The annotation is written first: it is what keeps the Event to one
	// per pod, and an Event lost after it is better than a stream of them.
	// The write is conditional on the pod's resourceVersion, since the cache
	// may not yet show the annotation a previous reconcile wrote; on a
	// conflict the pod's newer version is on its way, and its update event
	// reconciles the namespace again.
	orig := pod.DeepCopy()
	metav1.SetMetaDataAnnotation(&pod.ObjectMeta, AnnotationUnmeshedReported, r.clock().UTC().Format(time.RFC3339))
	if err := r.Patch(ctx, pod, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("mark unmeshed pod %s as reported: %w", klog.KObj(pod), err)
	}
	r.recorder.Eventf(pod, nil, corev1.EventTypeWarning, ReasonUnmeshed, actionReconcile, "%s",
		unmeshedMessage(d, owner, refTo(workload), restart))
	ctrl.LoggerFrom(ctx).Info("Pod runs without the Skein proxy", "pod", klog.KObj(pod), "injectReason", d.Reason)
	return nil
}

// restart sets skein.io/restartedAt on workload's pod template, so that its
// controller replaces its pods, unless restartDue says pod is not a reason to.
func (r *UnmeshedPodReconciler) restart(ctx context.Context, workload client.Object, pod *corev1.Pod) error {
	tmpl := podTemplateOf(workload)
	if !restartDue(tmpl.Annotations[AnnotationRestartedAt], pod.CreationTimestamp.Time) {
		return nil
	}
	orig := workload.DeepCopyObject().(client.Object)
	metav1.SetMetaDataAnnotation(&tmpl.ObjectMeta, AnnotationRestartedAt, r.clock().UTC().Format(time.RFC3339))
	// Conditional on the resourceVersion read, so that two restarts never
	// race; a conflict is retried with a fresh read.
	if err := r.Patch(ctx, workload, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("restart %s %s for unmeshed pod %s: %w",
			refTo(workload).Kind, klog.KObj(workload), klog.KObj(pod), err))
	}
	r.recorder.Eventf(workload, pod, corev1.EventTypeNormal, ReasonRestartedUnmeshed, actionRestart,
		"restarted so that pods with the Skein proxy replace pod %s and the others created without it", pod.Name)
	ctrl.LoggerFrom(ctx).Info("Restarted a workload to mesh its pods",
		"kind", refTo(workload).Kind, "workload", klog.KObj(workload), "pod", klog.KObj(pod))
	return nil
}

// workloadOf reads the object Skein restarts to replace the pods of
// controller owner: the Deployment of a ReplicaSet, a StatefulSet or a
// DaemonSet. It is nil for any other controller, for a ReplicaSet without a
// Deployment, and when the object is gone or was replaced by another of the
// same name.
func (r *UnmeshedPodReconciler) workloadOf(ctx context.Context, namespace string, owner *metav1.OwnerReference) (client.Object, error) {
	if gv, err := schema.ParseGroupVersion(owner.APIVersion); err != nil || gv.Group != appsv1.GroupName {
		return nil, nil
	}
	var obj client.Object
	switch owner.Kind {
	case "ReplicaSet":
		rs := &appsv1.ReplicaSet{}
		if ok, err := r.getOwner(ctx, namespace, owner, rs); !ok || err != nil {
			return nil, err
		}
		dep := metav1.GetControllerOf(rs)
		if dep == nil || dep.Kind != "Deployment" {
			return nil, nil
		}
		return r.workloadOf(ctx, namespace, dep)
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "DaemonSet":
		obj = &appsv1.DaemonSet{}
	default:
		return nil, nil
	}
	if ok, err := r.getOwner(ctx, namespace, owner, obj); !ok || err != nil {
		return nil, err
	}
	return obj, nil
}

// getOwner reads the object owner names into obj; false when it does not
// exist or has another UID.
func (r *UnmeshedPodReconciler) getOwner(ctx context.Context, namespace string, owner *metav1.OwnerReference, obj client.Object) (bool, error) {
	err := r.reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: owner.Name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("get %s %s/%s: %w", owner.Kind, namespace, owner.Name, err)
	}
	return obj.GetUID() == owner.UID, nil
}

// podTemplateOf is the pod template of a workload workloadOf returns.
func podTemplateOf(workload client.Object) *corev1.PodTemplateSpec {
	switch w := workload.(type) {
	case *appsv1.Deployment:
		return &w.Spec.Template
	case *appsv1.StatefulSet:
		return &w.Spec.Template
	case *appsv1.DaemonSet:
		return &w.Spec.Template
	}
	panic(fmt.Sprintf("no pod template in %T", workload))
}

// refTo names a workload workloadOf returns by kind and name; nil for nil.
func refTo(workload client.Object) *metav1.OwnerReference {
	var kind string
	switch workload.(type) {
	case nil:
		return nil
	case *appsv1.Deployment:
		kind = "Deployment"
	case *appsv1.StatefulSet:
		kind = "StatefulSet"
	case *appsv1.DaemonSet:
		kind = "DaemonSet"
	}
	return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: workload.GetName(), UID: workload.GetUID()}
}

func (r *UnmeshedPodReconciler) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// SetupWithManager registers the reconciler: it runs for a namespace when
// the namespace or one of its pods changes, and for every namespace when the
// mesh-wide settings change.
func (r *UnmeshedPodReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("unmeshedpods").
		For(&corev1.Namespace{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(namespaceOf)).
		WatchesRawSource(source.Channel(r.settingsChanged, handler.EnqueueRequestsFromMapFunc(r.allNamespaces))).
		Complete(r)
}

// namespaceOf maps an object to its namespace.
func namespaceOf(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
}

// allNamespaces maps a settings change to every namespace.
func (r *UnmeshedPodReconciler) allNamespaces(ctx context.Context, _ client.Object) []reconcile.Request {
	return listRequests(ctx, r.Client, &corev1.NamespaceList{})
}

package controllers

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skeinmesh/skein/internal/inject"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// Event reasons about pods that run without the proxy they should have.
const (
	// ReasonUnmeshed: the pod should run with the Skein proxy and does not (on the pod).
	ReasonUnmeshed = "Unmeshed"
	// ReasonRestartedUnmeshed: Skein restarted the workload so that injected pods replace its unmeshed ones (on the workload).
	ReasonRestartedUnmeshed = "RestartedUnmeshed"
)

// Annotations the operator reads and writes about unmeshed pods.
const (
	// AnnotationUnmeshedReported, on a pod, is the time Skein recorded the
	// pod's Unmeshed Event; its presence keeps that Event to one per pod.
	AnnotationUnmeshedReported = "skein.io/unmeshed-reported"
	// AnnotationRestartedAt, on a workload's pod template, is the time Skein
	// last restarted it for an unmeshed pod, as kubectl rollout restart does
	// with kubectl.kubernetes.io/restartedAt.
	AnnotationRestartedAt = "skein.io/restartedAt"
	// AnnotationRestartUnmeshedPods, on a namespace, is "true" or "false":
	// whether Skein restarts the workloads of the namespace's unmeshed pods.
	// It overrides the mesh-wide setting restartUnmeshedPods; any other
	// value is ignored.
	AnnotationRestartUnmeshedPods = "skein.io/restart-unmeshed-pods"
	// AnnotationSkipReported, on a pod the webhook skipped, is the time Skein
	// recorded the Event with the skip's reason; it keeps that Event to one.
	AnnotationSkipReported = "skein.io/inject-skipped-reported"
)

// restartQuietPeriod is how long after Skein restarted a workload a new
// unmeshed pod of that workload is taken as proof that the restart did not
// help (the webhook is still not injecting), so that Skein does not restart
// it again and again; a pod created later is a new outage's.
const restartQuietPeriod = 10 * time.Minute

// unmeshed reports whether a live pod, in namespace ns, should run with the
// Skein proxy and does not: inject.Decide would inject it (Injected or
// PodOptedIn), yet it has no skein.io/status annotation. Decide says
// AlreadyInjected for a pod with that annotation, so on an existing pod its
// Injected means "should have been injected". Finished pods and pods being
// deleted are not unmeshed: they no longer run, or soon will not. Pods
// Decide would refuse (a bad skein.io/ annotation) are not counted either:
// the webhook would deny them, and restarting would not mesh them.
func unmeshed(pod *corev1.Pod, ns *corev1.Namespace, cfg inject.Config) (inject.Decision, bool) {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return inject.Decision{}, false
	}
	if _, ok := pod.Annotations[inject.AnnotationStatus]; ok {
		return inject.Decision{}, false
	}
	d := inject.Decide(pod, ns, cfg)
	return d, d.Inject
}

// countUnmeshed is the number of pods that are unmeshed in namespace ns.
func countUnmeshed(pods []corev1.Pod, ns *corev1.Namespace, cfg inject.Config) int {
	n := 0
	for i := range pods {
		if _, ok := unmeshed(&pods[i], ns, cfg); ok {
			n++
		}
	}
	return n
}

// restartEnabled says whether the workloads of unmeshed pods in ns are
// restarted: the namespace's skein.io/restart-unmeshed-pods when it is a
// boolean, else the mesh-wide setting.
func restartEnabled(ns *corev1.Namespace, s meshconfig.Settings) bool {
	if ns != nil {
		if v, ok := ns.Annotations[AnnotationRestartUnmeshedPods]; ok {
			if b, err := strconv.ParseBool(v); err == nil {
				return b
			}
		}
	}
	return s.RestartUnmeshedPods
}

// restartDue says whether a workload whose pod template has
// skein.io/restartedAt: restartedAt ("" when Skein never restarted it)
// should be restarted for an unmeshed pod created at created:
//
//   - never restarted (or an unreadable time): yes;
//   - the pod is older than the restart: no, the rollout replaces it;
//   - the pod came within restartQuietPeriod after the restart: no, the
//     restart did not mesh it, so another would not either;
//   - the pod came later: yes, it belongs to a new outage.
//
// So each outage restarts a workload at most once.
func restartDue(restartedAt string, created time.Time) bool {
	if restartedAt == "" {
		return true
	}
	last, err := time.Parse(time.RFC3339, restartedAt)
	if err != nil {
		return true
	}
	return !created.Before(last.Add(restartQuietPeriod))
}

// unmeshedMessage is the Unmeshed Event's message for a pod that Decide
// would inject with d. owner is the pod's controller (nil for a bare pod),
// workload the Deployment, StatefulSet or DaemonSet that Skein can restart
// to replace it (nil when there is none), and restart whether it does.
func unmeshedMessage(d inject.Decision, owner, workload *metav1.OwnerReference, restart bool) string {
	msg := fmt.Sprintf("the pod runs without the Skein proxy although it should have it (%s): "+
		"it was created while the injection webhook was unreachable, or before injection was enabled; "+
		"its traffic bypasses the mesh", d.Message)
	switch {
	case owner == nil:
		return msg + "; it has no workload that Skein could restart: delete it and create it again to mesh it"
	case workload == nil:
		return msg + fmt.Sprintf("; Skein does not restart its %s %s: delete the pod to mesh its replacement", owner.Kind, owner.Name)
	case restart:
		return msg + fmt.Sprintf("; Skein restarts its %s %s to replace it with a meshed pod", workload.Kind, workload.Name)
	default:
		return msg + fmt.Sprintf("; restart its %s %s (kubectl rollout restart) to mesh it, "+
			"or set restartUnmeshedPods to let Skein do it", workload.Kind, workload.Name)
	}
}

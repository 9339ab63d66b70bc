package inject

import corev1 "k8s.io/api/core/v1"

// AnnotationSkipped is set by the webhook on a pod that was meant for the
// mesh but was not injected, to the Decision's Reason (such as HostNetwork or
// PodOptedOut). The pod does not exist yet at admission, so the reason
// travels on the pod itself, as Linkerd does, for the operator to turn into an
// Event.
const AnnotationSkipped = "skein.io/inject-skipped"

// MarkSkipped returns the pod to admit when d does not inject it: a copy
// carrying AnnotationSkipped: d.Reason when the pod's namespace enables
// injection or the pod itself has a skein.io/inject annotation or label, and
// pod itself otherwise, so that pods of namespaces outside the mesh are left
// untouched. Already injected pods are returned as they are: their status
// annotation says what they are. MarkSkipped never changes its argument.
func MarkSkipped(pod *corev1.Pod, ns *corev1.Namespace, d Decision) *corev1.Pod {
	if d.Inject || d.Reason == AlreadyInjected {
		return pod
	}
	podSetting, _ := injectSetting(pod.Annotations, pod.Labels)
	var nsSetting string
	if ns != nil {
		nsSetting, _ = injectSetting(ns.Annotations, ns.Labels)
	}
	if podSetting == "" && nsSetting != InjectEnabled {
		return pod
	}
	if pod.Annotations[AnnotationSkipped] == string(d.Reason) {
		return pod
	}
	out := pod.DeepCopy()
	setAnnotation(out, AnnotationSkipped, string(d.Reason))
	return out
}

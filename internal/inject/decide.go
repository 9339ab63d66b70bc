package inject

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Reason says why a pod is or is not injected; it is an Event's reason.
type Reason string

const (
	// Injected: the pod's namespace is enabled and the pod did not opt out.
	Injected Reason = "Injected"
	// PodOptedIn: the pod asked for injection in a namespace that is not enabled.
	PodOptedIn Reason = "PodOptedIn"
	// NamespaceNotEnabled: the namespace does not enable injection and the pod did not ask.
	NamespaceNotEnabled Reason = "NamespaceNotEnabled"
	// PodOptedOut: the pod asked not to be injected.
	PodOptedOut Reason = "PodOptedOut"
	// HostNetwork: the pod uses the node's network, which a proxy must not capture.
	HostNetwork Reason = "HostNetwork"
	// AlreadyInjected: the pod carries the status annotation; injecting again would change nothing.
	AlreadyInjected Reason = "AlreadyInjected"
	// ControlPlaneNamespace: the pod belongs to Kubernetes' or Skein's own control plane.
	ControlPlaneNamespace Reason = "ControlPlaneNamespace"
	// InvalidAnnotation: a skein.io/ annotation of the pod has a value that cannot be used; the pod is refused.
	InvalidAnnotation Reason = "InvalidAnnotation"
	// NameConflict: the pod already has a container or volume named like one Skein adds; the pod is refused.
	NameConflict Reason = "NameConflict"
)

// Decision is Decide's answer.
type Decision struct {
	// Inject is true when Mutate should be applied.
	Inject bool
	// Reason is why, as a CamelCase constant.
	Reason Reason
	// Message says the same to a person, naming the annotation or field
	// that decided.
	Message string
}

// Refused reports whether the webhook must deny the pod, with Message,
// instead of admitting it: the pod was meant to be injected but cannot be
// as it stands, and admitting it without a proxy would put it outside the
// mesh unnoticed.
func (d Decision) Refused() bool {
	return d.Reason == InvalidAnnotation || d.Reason == NameConflict
}

// controlPlaneNamespaces are Kubernetes' own; the operator's is added from
// Config.
var controlPlaneNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// Decide says whether pod, in namespace ns, gets the sidecar. ns may be nil,
// which counts as a namespace without annotations or labels. The pod's
// namespace is pod.Namespace, or ns.Name when that is empty (as in some
// admission requests). The first rule that applies decides:
//
//  1. control-plane namespaces (kube-system, kube-public, kube-node-lease,
//     the operator's): never;
//  2. a pod carrying the status annotation: already injected;
//  3. the pod's skein.io/inject annotation (or label): "disabled" opts out,
//     anything but "enabled" or "disabled" is refused;
//  4. a namespace without skein.io/inject: enabled, unless the pod says enabled;
//  5. host network: never;
//  6. every other skein.io/ annotation must be valid and no container or
//     volume may already use a name Skein adds, or the pod is refused.
func Decide(pod *corev1.Pod, ns *corev1.Namespace, cfg Config) Decision {
	nsName := pod.Namespace
	if nsName == "" && ns != nil {
		nsName = ns.Name
	}
	if slices.Contains(controlPlaneNamespaces, nsName) || nsName == cfg.OperatorNamespace {
		return skip(ControlPlaneNamespace, "namespace %s belongs to the control plane, where Skein never injects", nsName)
	}
	if status, ok := pod.Annotations[AnnotationStatus]; ok {
		return skip(AlreadyInjected, "the pod already has annotation %s: %s", AnnotationStatus, status)
	}

	podSetting, podFrom := injectSetting(pod.Annotations, pod.Labels)
	switch podSetting {
	case "", InjectEnabled:
	case InjectDisabled:
		return skip(PodOptedOut, "the pod's %s %s is %q", podFrom, AnnotationInject, podSetting)
	default:
		return Decision{Reason: InvalidAnnotation, Message: fmt.Sprintf(
			"%s %q: invalid value %q: must be %q or %q", podFrom, AnnotationInject, podSetting, InjectEnabled, InjectDisabled)}
	}
	var nsSetting, nsFrom string
	if ns != nil {
		nsSetting, nsFrom = injectSetting(ns.Annotations, ns.Labels)
	}
	reason, why := Injected, fmt.Sprintf("namespace %s has %s %s: %s", nsName, nsFrom, AnnotationInject, nsSetting)
	if nsSetting != InjectEnabled {
		if podSetting != InjectEnabled {
			if nsSetting == "" {
				return skip(NamespaceNotEnabled, "namespace %s has no annotation or label %s: %s, and the pod does not ask for injection",
					nsName, AnnotationInject, InjectEnabled)
			}
			return skip(NamespaceNotEnabled, "namespace %s has %s %s: %q (only %q turns injection on), and the pod does not ask for injection",
				nsName, nsFrom, AnnotationInject, nsSetting, InjectEnabled)
		}
		reason, why = PodOptedIn, fmt.Sprintf("the pod's %s %s is %q, though namespace %s does not enable injection",
			podFrom, AnnotationInject, podSetting, nsName)
	}
	if pod.Spec.HostNetwork {
		return skip(HostNetwork, "the pod uses the node's network (spec.hostNetwork), where a proxy would capture the node's traffic")
	}
	if _, err := podOptionsOf(pod, cfg); err != nil {
		return Decision{Reason: InvalidAnnotation, Message: oneLine(err)}
	}
	if err := nameConflict(pod); err != nil {
		return Decision{Reason: NameConflict, Message: err.Error()}
	}
	return Decision{Inject: true, Reason: reason, Message: why}
}

func skip(r Reason, format string, args ...any) Decision {
	return Decision{Reason: r, Message: fmt.Sprintf(format, args...)}
}

// oneLine is err's message with the errors it joins separated by "; ".
func oneLine(err error) string {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		msgs := make([]string, 0, len(joined.Unwrap()))
		for _, e := range joined.Unwrap() {
			msgs = append(msgs, oneLine(e))
		}
		return strings.Join(msgs, "; ")
	}
	return err.Error()
}

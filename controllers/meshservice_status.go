package controllers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/inject"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// maxIdentities is the API's cap on status.identities.
const maxIdentities = 16

// meshServiceObservation is what the MeshService reconciler read from the cluster.
type meshServiceObservation struct {
	// service is the Service behind the MeshService, nil when it does not exist.
	service *corev1.Service
	// pods are the live pods the Service selects.
	pods []corev1.Pod
	// namespace is the MeshService's namespace, nil when it could not be read.
	namespace *corev1.Namespace
	// settings are the mesh-wide settings in force.
	settings meshconfig.Settings
}

// meshServiceStatus computes a MeshService's status, conditions without
// transition times, from what was observed. It makes no client calls.
func meshServiceStatus(ms *meshv1alpha1.MeshService, obs meshServiceObservation) meshv1alpha1.MeshServiceStatus {
	gen := ms.Generation
	st := meshv1alpha1.MeshServiceStatus{ObservedGeneration: gen}
	if obs.service != nil {
		st.Pods = int32(len(obs.pods))
		for _, sub := range ms.Spec.Subsets {
			st.Subsets = append(st.Subsets, meshv1alpha1.SubsetStatus{
				Name: string(sub.Name),
				Pods: int32(countMatching(obs.pods, sub.Labels)),
			})
		}
		st.Identities = identities(ms.Namespace, obs.pods, obs.settings)
		st.UnmeshedPods = int32(countUnmeshed(obs.pods, obs.namespace, inject.NewConfig(obs.settings)))
	}
	st.Conditions = []metav1.Condition{
		condition(meshv1alpha1.ConditionAccepted, true, meshv1alpha1.ReasonAccepted, "the MeshService is valid", gen),
		meshServiceResolvedRefs(ms, obs.service, st.Pods, st.Subsets),
		pendingProgrammed(gen),
	}
	return st
}

func meshServiceResolvedRefs(ms *meshv1alpha1.MeshService, svc *corev1.Service, pods int32, subsets []meshv1alpha1.SubsetStatus) metav1.Condition {
	gen := ms.Generation
	notResolved := func(reason, format string, args ...any) metav1.Condition {
		return condition(meshv1alpha1.ConditionResolvedRefs, false, reason, fmt.Sprintf(format, args...), gen)
	}
	name := ms.ServiceName()
	if svc == nil {
		return notResolved(meshv1alpha1.ReasonServiceNotFound,
			"Service %s/%s does not exist; create it, or point spec.serviceRef at an existing Service", ms.Namespace, name)
	}
	if len(svc.Spec.Selector) == 0 {
		return notResolved(meshv1alpha1.ReasonServiceHasNoSelector,
			"Service %s/%s has no pod selector, so the mesh cannot find its pods", ms.Namespace, name)
	}
	if missing := missingPorts(ms, svc); len(missing) > 0 {
		return notResolved(meshv1alpha1.ReasonPortNotFound,
			"spec.ports names %s, not a port of Service %s/%s (it has %s)",
			joinPorts(missing), ms.Namespace, name, joinPorts(servicePortNumbers(svc)))
	}
	var empty []string
	for _, s := range subsets {
		if s.Pods == 0 {
			empty = append(empty, s.Name)
		}
	}
	if len(empty) > 0 {
		return notResolved(meshv1alpha1.ReasonSubsetHasNoPods,
			"subsets %s select no running pod of Service %s/%s; traffic sent to them fails",
			strings.Join(empty, ", "), ms.Namespace, name)
	}
	return condition(meshv1alpha1.ConditionResolvedRefs, true, meshv1alpha1.ReasonResolvedRefs,
		fmt.Sprintf("Service %s/%s selects %d pods", ms.Namespace, name, pods), gen)
}

// missingPorts are the ports the MeshService declares that the Service lacks.
func missingPorts(ms *meshv1alpha1.MeshService, svc *corev1.Service) []int32 {
	have := servicePortNumbers(svc)
	var missing []int32
	for _, p := range ms.Spec.Ports {
		if !slices.Contains(have, int32(p.Port)) {
			missing = append(missing, int32(p.Port))
		}
	}
	return missing
}

func servicePortNumbers(svc *corev1.Service) []int32 {
	ports := make([]int32, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		ports = append(ports, p.Port)
	}
	return ports
}

func joinPorts(ports []int32) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}

// livePods keeps the pods that run or will run: not finished, not being deleted.
func livePods(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out = append(out, p)
	}
	return out
}

func countMatching(pods []corev1.Pod, set map[string]string) int {
	sel := labels.SelectorFromSet(set)
	n := 0
	for _, p := range pods {
		if sel.Matches(labels.Set(p.Labels)) {
			n++
		}
	}
	return n
}

// identities are the SPIFFE IDs of the pods' service accounts, sorted, at
// most maxIdentities.
func identities(namespace string, pods []corev1.Pod, settings meshconfig.Settings) []string {
	var ids []string
	for _, p := range pods {
		sa := p.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		ids = append(ids, settings.SPIFFEID(namespace, sa))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > maxIdentities {
		ids = ids[:maxIdentities]
	}
	return ids
}

package controllers

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
)

// trafficPolicyObservation is what the TrafficPolicy reconciler read from the cluster.
type trafficPolicyObservation struct {
	// target is the MeshService named by targetRef, nil when it does not exist.
	target *meshv1alpha1.MeshService
	// targetService is the target's Service, nil when unknown.
	targetService *corev1.Service
	// claimedBy is the older TrafficPolicy that claims the same target and port, "" if none.
	claimedBy string
	// services are the MeshServices that backends and failover name; a
	// missing key means the MeshService does not exist.
	services map[types.NamespacedName]*meshv1alpha1.MeshService
}

// trafficPolicyStatus computes a TrafficPolicy's status, conditions without
// transition times, from what was observed. It makes no client calls.
func trafficPolicyStatus(tp *meshv1alpha1.TrafficPolicy, obs trafficPolicyObservation) meshv1alpha1.TrafficPolicyStatus {
	gen := tp.Generation
	return meshv1alpha1.TrafficPolicyStatus{
		ObservedGeneration: gen,
		Conditions: []metav1.Condition{
			trafficPolicyAccepted(tp, obs.claimedBy),
			trafficPolicyResolvedRefs(tp, obs),
			pendingProgrammed(gen),
		},
	}
}

func trafficPolicyAccepted(tp *meshv1alpha1.TrafficPolicy, claimedBy string) metav1.Condition {
	gen := tp.Generation
	if errs := mesh.InvalidRegexes(&tp.Spec); len(errs) > 0 {
		return condition(meshv1alpha1.ConditionAccepted, false, meshv1alpha1.ReasonInvalid, strings.Join(errs, "; "), gen)
	}
	if claimedBy != "" {
		return condition(meshv1alpha1.ConditionAccepted, false, meshv1alpha1.ReasonConflicted,
			fmt.Sprintf("TrafficPolicy %s already governs %s, and the older policy wins; merge the two or target another port",
				claimedBy, targetDescription(tp.Spec.TargetRef)), gen)
	}
	return condition(meshv1alpha1.ConditionAccepted, true, meshv1alpha1.ReasonAccepted,
		fmt.Sprintf("the policy governs %s", targetDescription(tp.Spec.TargetRef)), gen)
}

func targetDescription(ref meshv1alpha1.PolicyTargetReference) string {
	if ref.Port != nil {
		return fmt.Sprintf("port %d of MeshService %s", *ref.Port, ref.Name)
	}
	return fmt.Sprintf("every port of MeshService %s", ref.Name)
}

// resolveSeverity orders ResolvedRefs reasons from the gravest: a policy's
// condition carries the gravest reason among its problems.
var resolveSeverity = []string{
	meshv1alpha1.ReasonPortNotFound,
	meshv1alpha1.ReasonBackendNotFound,
	meshv1alpha1.ReasonNotExported,
	meshv1alpha1.ReasonSubsetNotFound,
	meshv1alpha1.ReasonSubsetHasNoPods,
}

// trafficPolicyResolvedRefs checks the target, its port, and every backend
// and failover service; it reports every problem, with the gravest one's reason.
func trafficPolicyResolvedRefs(tp *meshv1alpha1.TrafficPolicy, obs trafficPolicyObservation) metav1.Condition {
	gen := tp.Generation
	ref := tp.Spec.TargetRef
	if obs.target == nil {
		return condition(meshv1alpha1.ConditionResolvedRefs, false, meshv1alpha1.ReasonTargetNotFound,
			fmt.Sprintf("spec.targetRef: MeshService %s/%s does not exist", tp.Namespace, ref.Name), gen)
	}
	var reason string
	var problems []string
	problem := func(r, format string, args ...any) {
		if reason == "" || slices.Index(resolveSeverity, r) < slices.Index(resolveSeverity, reason) {
			reason = r
		}
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	if ref.Port != nil && !hasPort(obs.target, obs.targetService, int32(*ref.Port)) {
		problem(meshv1alpha1.ReasonPortNotFound, "spec.targetRef.port: %d is not a port of MeshService %s", *ref.Port, ref.Name)
	}
	for i, route := range tp.Spec.Routes {
		for j, b := range route.Backends {
			field := fmt.Sprintf("spec.routes[%d].backends[%d]", i, j)
			key := backendKey(tp, b.Namespace, b.Name)
			checkService(tp, obs, field, key, string(b.Subset), problem)
		}
	}
	if tp.Spec.Failover != nil {
		for i, s := range tp.Spec.Failover.Services {
			field := fmt.Sprintf("spec.failover.services[%d]", i)
			checkService(tp, obs, field, backendKey(tp, s.Namespace, s.Name), "", problem)
		}
	}
	if len(problems) > 0 {
		return condition(meshv1alpha1.ConditionResolvedRefs, false, reason, strings.Join(problems, "; "), gen)
	}
	return condition(meshv1alpha1.ConditionResolvedRefs, true, meshv1alpha1.ReasonResolvedRefs, "every referenced MeshService exists", gen)
}

// checkService reports what is wrong with a MeshService a policy sends traffic to.
func checkService(tp *meshv1alpha1.TrafficPolicy, obs trafficPolicyObservation, field string, key types.NamespacedName,
	subset string, problem func(reason, format string, args ...any)) {
	ms, ok := obs.services[key]
	switch {
	case !ok || ms == nil:
		problem(meshv1alpha1.ReasonBackendNotFound, "%s: MeshService %s does not exist", field, key)
	case !ms.ExportedTo(tp.Namespace):
		problem(meshv1alpha1.ReasonNotExported, "%s: MeshService %s is not exported to namespace %s (see its spec.exportTo)", field, key, tp.Namespace)
	case subset == "":
	case !ms.HasSubset(subset):
		problem(meshv1alpha1.ReasonSubsetNotFound, "%s: MeshService %s has no subset %q", field, key, subset)
	case subsetPods(ms, subset) == 0:
		problem(meshv1alpha1.ReasonSubsetHasNoPods, "%s: subset %q of MeshService %s selects no running pod", field, subset, key)
	}
}

// subsetPods is the pod count the MeshService's status reports for a subset,
// or -1 when its status does not report it yet.
func subsetPods(ms *meshv1alpha1.MeshService, subset string) int32 {
	i := slices.IndexFunc(ms.Status.Subsets, func(s meshv1alpha1.SubsetStatus) bool { return s.Name == subset })
	if i < 0 {
		return -1
	}
	return ms.Status.Subsets[i].Pods
}

// hasPort reports whether port is a meshed port of the MeshService: one it
// declares, or, when it declares none, one of its Service's.
func hasPort(ms *meshv1alpha1.MeshService, svc *corev1.Service, port int32) bool {
	if len(ms.Spec.Ports) > 0 {
		return slices.ContainsFunc(ms.Spec.Ports, func(p meshv1alpha1.MeshServicePort) bool { return int32(p.Port) == port })
	}
	return svc != nil && slices.Contains(servicePortNumbers(svc), port)
}

// backendKey is the MeshService a backend or failover entry names, with the
// target and the policy's namespace as defaults.
func backendKey(tp *meshv1alpha1.TrafficPolicy, namespace, name meshv1alpha1.ObjectName) types.NamespacedName {
	key := types.NamespacedName{Namespace: string(namespace), Name: string(name)}
	if key.Namespace == "" {
		key.Namespace = tp.Namespace
	}
	if key.Name == "" {
		key.Name = string(tp.Spec.TargetRef.Name)
	}
	return key
}

// backendRefs lists every MeshService a policy's backends and failover name, without repeats.
func backendRefs(tp *meshv1alpha1.TrafficPolicy) []types.NamespacedName {
	var refs []types.NamespacedName
	add := func(k types.NamespacedName) {
		if !slices.Contains(refs, k) {
			refs = append(refs, k)
		}
	}
	for _, route := range tp.Spec.Routes {
		for _, b := range route.Backends {
			add(backendKey(tp, b.Namespace, b.Name))
		}
	}
	if tp.Spec.Failover != nil {
		for _, s := range tp.Spec.Failover.Services {
			add(backendKey(tp, s.Namespace, s.Name))
		}
	}
	return refs
}

package controllers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// authorizationPolicyStatus computes an AuthorizationPolicy's status,
// conditions without transition times, from its target (nil when it does not
// exist) and the target's Service (nil when unknown). It makes no client calls.
func authorizationPolicyStatus(ap *meshv1alpha1.AuthorizationPolicy, target *meshv1alpha1.MeshService, svc *corev1.Service) meshv1alpha1.AuthorizationPolicyStatus {
	gen := ap.Generation
	return meshv1alpha1.AuthorizationPolicyStatus{
		ObservedGeneration: gen,
		Conditions: []metav1.Condition{
			condition(meshv1alpha1.ConditionAccepted, true, meshv1alpha1.ReasonAccepted,
				fmt.Sprintf("%s policy with %d rules", ap.Spec.Action, len(ap.Spec.Rules)), gen),
			authorizationPolicyResolvedRefs(ap, target, svc),
			pendingProgrammed(gen),
		},
	}
}

func authorizationPolicyResolvedRefs(ap *meshv1alpha1.AuthorizationPolicy, target *meshv1alpha1.MeshService, svc *corev1.Service) metav1.Condition {
	gen := ap.Generation
	ref := ap.Spec.TargetRef
	switch {
	case ref == nil:
		return condition(meshv1alpha1.ConditionResolvedRefs, true, meshv1alpha1.ReasonResolvedRefs,
			fmt.Sprintf("no targetRef: the policy applies to every meshed workload in namespace %s", ap.Namespace), gen)
	case target == nil:
		return condition(meshv1alpha1.ConditionResolvedRefs, false, meshv1alpha1.ReasonTargetNotFound,
			fmt.Sprintf("spec.targetRef: MeshService %s/%s does not exist", ap.Namespace, ref.Name), gen)
	case ref.Port != nil && !hasPort(target, svc, int32(*ref.Port)):
		return condition(meshv1alpha1.ConditionResolvedRefs, false, meshv1alpha1.ReasonPortNotFound,
			fmt.Sprintf("spec.targetRef.port: %d is not a port of MeshService %s", *ref.Port, ref.Name), gen)
	}
	return condition(meshv1alpha1.ConditionResolvedRefs, true, meshv1alpha1.ReasonResolvedRefs,
		fmt.Sprintf("the policy protects %s", targetDescription(*ref)), gen)
}

package controllers

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// condition is a condition without its transition time, which mergeConditions sets.
func condition(typ string, ok bool, reason, message string, generation int64) metav1.Condition {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: generation}
}

// pendingProgrammed is the Programmed condition until proxies report back.
func pendingProgrammed(generation int64) metav1.Condition {
	return metav1.Condition{
		Type:               meshv1alpha1.ConditionProgrammed,
		Status:             metav1.ConditionUnknown,
		Reason:             meshv1alpha1.ReasonPending,
		Message:            "no proxy has acknowledged this configuration yet",
		ObservedGeneration: generation,
	}
}

// mergeConditions returns next with the transition times of prev kept for
// conditions whose status did not change, so that an unchanged status
// compares equal and is not written.
func mergeConditions(prev, next []metav1.Condition) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(next))
	for _, c := range prev {
		if meta.FindStatusCondition(next, c.Type) != nil {
			out = append(out, c)
		}
	}
	for _, c := range next {
		meta.SetStatusCondition(&out, c)
	}
	return out
}

// changedConditions returns the conditions of next whose status or reason
// differs from prev: the transitions worth an Event.
func changedConditions(prev, next []metav1.Condition) []metav1.Condition {
	var out []metav1.Condition
	for _, c := range next {
		old := meta.FindStatusCondition(prev, c.Type)
		if old == nil || old.Status != c.Status || old.Reason != c.Reason {
			out = append(out, c)
		}
	}
	return out
}

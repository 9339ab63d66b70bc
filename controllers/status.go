package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// actionReconcile is the action recorded on the Events reconcilers emit.
const actionReconcile = "Reconcile"

// statusWriter writes an object's status when it changed and tells people
// about condition transitions through Events.
type statusWriter struct {
	client   client.Client
	recorder events.EventRecorder
}

// write patches obj's status, already set to the new value, against orig,
// unless the two statuses are equal; then it records an Event for each
// Accepted or ResolvedRefs condition that changed, and for a Programmed
// condition that turned Rejected.
func (w statusWriter) write(ctx context.Context, orig, obj client.Object, origStatus, newStatus any, prevConds, nextConds []metav1.Condition) error {
	if equality.Semantic.DeepEqual(origStatus, newStatus) {
		return nil
	}
	if err := w.client.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("write status of %s: %w", klog.KObj(obj), err)
	}
	for _, c := range changedConditions(prevConds, nextConds) {
		if c.Type == meshv1alpha1.ConditionProgrammed && c.Reason != ReasonRejected {
			continue // proxies come and go; only a refusal is news for people
		}
		eventType := corev1.EventTypeNormal
		if c.Status != metav1.ConditionTrue {
			eventType = corev1.EventTypeWarning
		}
		w.recorder.Eventf(obj, nil, eventType, c.Reason, actionReconcile, "%s: %s", c.Type, c.Message)
	}
	return nil
}

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestPodCreatedWhileTheOperatorIsDownIsReportedAndFixed: with the
// webhook's failurePolicy Ignore and the operator scaled to zero, a pod in
// a meshed namespace is created without the proxy. When the operator is
// back it reports the pod (Warning Event Unmeshed) and, since the namespace
// turned restarts on, rolls the Deployment once the webhook injects again:
// its new pod runs with the proxy.
func TestPodCreatedWhileTheOperatorIsDownIsReportedAndFixed(t *testing.T) {
	// Cleanups run after t's context is canceled: they use a context of their own.
	setFailurePolicy(t, t.Context(), admissionregistrationv1.Ignore)
	t.Cleanup(func() { setFailurePolicy(t, context.Background(), admissionregistrationv1.Fail) })
	scaleOperator(t, t.Context(), 0)
	t.Cleanup(func() { scaleOperator(t, context.Background(), 1) })

	ns := newNamespace(t, map[string]string{"skein.io/inject": "enabled", "skein.io/restart-unmeshed-pods": "true"})
	dep := echoDeployment(ns, "late", 1)
	if err := k8s.Create(t.Context(), dep); err != nil {
		t.Fatal(err)
	}
	var unmeshed corev1.Pod
	eventually(t, 2*time.Minute, "a pod created without the proxy", func() error {
		pods := &corev1.PodList{}
		if err := k8s.List(t.Context(), pods, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d pods", len(pods.Items))
		}
		unmeshed = pods.Items[0]
		if _, injected := unmeshed.Annotations["skein.io/status"]; injected {
			t.Fatalf("pod %s was injected while the operator was down", unmeshed.Name)
		}
		return nil
	})

	scaleOperator(t, t.Context(), 1)
	eventually(t, 2*time.Minute, "Warning Event Unmeshed on "+unmeshed.Name, func() error {
		list := &eventsv1.EventList{}
		if err := k8s.List(t.Context(), list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.UID == unmeshed.UID && e.Reason == "Unmeshed" && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("%d events, none Unmeshed about the pod", len(list.Items))
	})
	eventually(t, 3*time.Minute, "the Deployment's new pod runs with the proxy", func() error {
		pods := &corev1.PodList{}
		if err := k8s.List(t.Context(), pods, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if _, injected := p.Annotations["skein.io/status"]; injected && podReady(&p) && p.DeletionTimestamp == nil {
				return nil
			}
		}
		return fmt.Errorf("no Ready injected pod among %d", len(pods.Items))
	})
	if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(dep), dep); err != nil {
		t.Fatal(err)
	}
	if dep.Spec.Template.Annotations["skein.io/restartedAt"] == "" {
		t.Error("the Deployment was not restarted by the operator")
	}
}

func setFailurePolicy(t *testing.T, ctx context.Context, policy admissionregistrationv1.FailurePolicyType) {
	t.Helper()
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: "skein-injector"}, cfg); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(cfg.DeepCopy())
	for i := range cfg.Webhooks {
		cfg.Webhooks[i].FailurePolicy = ptr.To(policy)
	}
	if err := k8s.Patch(ctx, cfg, patch); err != nil {
		t.Fatal(err)
	}
}

// scaleOperator sets the operator's replicas and waits until exactly that
// many of its pods are Ready and no other is left.
func scaleOperator(t *testing.T, ctx context.Context, replicas int32) {
	t.Helper()
	dep := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: operatorNamespace, Name: "skein-operator"}
	if err := k8s.Get(ctx, key, dep); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(dep.DeepCopy())
	dep.Spec.Replicas = ptr.To(replicas)
	if err := k8s.Patch(ctx, dep, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, fmt.Sprintf("operator at %d replicas", replicas), func() error {
		pods := &corev1.PodList{}
		if err := k8s.List(ctx, pods, client.InNamespace(operatorNamespace), client.MatchingLabels(dep.Spec.Selector.MatchLabels)); err != nil {
			return err
		}
		ready := 0
		for _, p := range pods.Items {
			if podReady(&p) {
				ready++
			}
		}
		if len(pods.Items) != int(replicas) || ready != int(replicas) {
			return fmt.Errorf("%d pods, %d Ready", len(pods.Items), ready)
		}
		return nil
	})
}

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
// webhook's failurePolicy set to Ignore through the mesh-wide ConfigMap and
// the operator scaled to zero, a pod in
// a meshed namespace is created without the proxy. When the operator is
// back it reports the pod (Warning Event Unmeshed) and, since the namespace
// turned restarts on, rolls the Deployment once the webhook injects again:
// its new pod runs with the proxy.
func TestPodCreatedWhileTheOperatorIsDownIsReportedAndFixed(t *testing.T) {
	// Cleanups run after t's context is canceled: they use a context of
	// their own, and run last in, first out: the operator is back before
	// the policy is set back.
	t.Cleanup(func() { setFailurePolicy(t, context.Background(), admissionregistrationv1.Fail) })
	setFailurePolicy(t, t.Context(), admissionregistrationv1.Ignore)
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

// setFailurePolicy sets webhookFailurePolicy in the mesh-wide ConfigMap, the
// way a user does, and waits until the operator put it on the injection
// webhook's configuration.
func setFailurePolicy(t *testing.T, ctx context.Context, policy admissionregistrationv1.FailurePolicyType) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "skein-config"}, cm); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data["webhookFailurePolicy"] = string(policy)
	if err := k8s.Patch(ctx, cm, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "webhook failurePolicy "+string(policy), func() error {
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: "skein-injector"}, cfg); err != nil {
			return err
		}
		for _, w := range cfg.Webhooks {
			if w.FailurePolicy == nil || *w.FailurePolicy != policy {
				return fmt.Errorf("webhook %s has failurePolicy %v", w.Name, w.FailurePolicy)
			}
		}
		return nil
	})
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

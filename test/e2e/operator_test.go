//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestOperatorReady: the operator's Deployment is available and its pod is
// Ready, running the image `make images` built.
func TestOperatorReady(t *testing.T) {
	eventually(t, 2*time.Minute, "operator Ready", func() error {
		dep := &appsv1.Deployment{}
		if err := k8s.Get(t.Context(), client.ObjectKey{Namespace: operatorNamespace, Name: "skein-operator"}, dep); err != nil {
			return err
		}
		if dep.Status.AvailableReplicas < 1 {
			return fmt.Errorf("%d available replicas", dep.Status.AvailableReplicas)
		}
		pods := &corev1.PodList{}
		if err := k8s.List(t.Context(), pods, client.InNamespace(operatorNamespace), client.MatchingLabels(dep.Spec.Selector.MatchLabels)); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if podReady(&p) && p.Spec.Containers[0].Image == "docker.io/skeinmesh/skein-operator:dev" {
				return nil
			}
		}
		return fmt.Errorf("no Ready operator pod among %d", len(pods.Items))
	})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

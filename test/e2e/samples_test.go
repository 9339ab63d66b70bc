//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// TestSamplesResolveOnRunningPods applies the demo application and the
// samples to a meshed namespace: the pods run, and the operator reports
// every sample Accepted with its references resolved, subsets included.
func TestSamplesResolveOnRunningPods(t *testing.T) {
	ns := newNamespace(t, map[string]string{"skein.io/inject": "enabled"})
	applyFile(t, repoFile("hack/demo/app.yaml"), ns)
	samples, err := filepath.Glob(repoFile("config/samples/mesh_*.yaml"))
	if err != nil || len(samples) != 3 {
		t.Fatalf("samples: %v %v", samples, err)
	}
	for _, s := range samples {
		applyFile(t, s, ns)
	}

	eventually(t, 3*time.Minute, "demo pods Ready", func() error {
		pods := &corev1.PodList{}
		if err := k8s.List(t.Context(), pods, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(pods.Items) != 3 {
			return fmt.Errorf("%d pods, want 3", len(pods.Items))
		}
		for _, p := range pods.Items {
			if !podReady(&p) {
				return fmt.Errorf("pod %s is %s, not Ready", p.Name, p.Status.Phase)
			}
		}
		return nil
	})

	ms := &meshv1alpha1.MeshService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "catalog"}}
	tp := &meshv1alpha1.TrafficPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "catalog"}}
	ap := &meshv1alpha1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "catalog-allow-frontend"}}
	objects := []conditioned{
		{ms, func() []metav1.Condition { return ms.Status.Conditions }},
		{tp, func() []metav1.Condition { return tp.Status.Conditions }},
		{ap, func() []metav1.Condition { return ap.Status.Conditions }},
	}
	for _, o := range objects {
		eventually(t, time.Minute, fmt.Sprintf("%T %s Accepted and resolved", o.obj, o.obj.GetName()), func() error {
			if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(o.obj), o.obj); err != nil {
				return err
			}
			for _, typ := range []string{meshv1alpha1.ConditionAccepted, meshv1alpha1.ConditionResolvedRefs} {
				c := findCondition(o.conds(), typ)
				if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != o.obj.GetGeneration() {
					return fmt.Errorf("%s: %+v", typ, c)
				}
			}
			return nil
		})
	}
	wantSubsets := []meshv1alpha1.SubsetStatus{{Name: "v1", Pods: 1}, {Name: "v2", Pods: 1}}
	if fmt.Sprint(ms.Status.Subsets) != fmt.Sprint(wantSubsets) || ms.Status.Pods != 2 {
		t.Errorf("MeshService status pods %d subsets %v, want 2 and %v", ms.Status.Pods, ms.Status.Subsets, wantSubsets)
	}
}

// conditioned is a mesh object and its status conditions.
type conditioned struct {
	obj   client.Object
	conds func() []metav1.Condition
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

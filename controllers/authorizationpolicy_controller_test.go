package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// TestAuthorizationPolicyLifecycle: a namespace-wide policy resolves at
// once; a targeted one waits for its MeshService and loses it on deletion.
func TestAuthorizationPolicyLifecycle(t *testing.T) {
	ns := newNamespace(t)
	wide := &meshv1alpha1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deny-all"}}
	create(t, wide)
	waitForConditions(t, "namespace-wide policy", wide, func() []metav1.Condition { return wide.Status.Conditions },
		1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonResolvedRefs)

	ap := &meshv1alpha1.AuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "catalog"},
		Spec: meshv1alpha1.AuthorizationPolicySpec{
			TargetRef: &meshv1alpha1.PolicyTargetReference{Name: "catalog"},
			Rules: []meshv1alpha1.AuthorizationRule{{
				From: []meshv1alpha1.Source{{Principals: []meshv1alpha1.Principal{"spiffe://cluster.local/ns/" + meshv1alpha1.Principal(ns) + "/sa/frontend"}}},
			}},
		},
	}
	create(t, ap)
	conds := func() []metav1.Condition { return ap.Status.Conditions }
	waitForConditions(t, "target missing", ap, conds, 1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonTargetNotFound)

	ms := meshService(ns, "catalog")
	create(t, ms)
	waitForConditions(t, "target appears", ap, conds, 1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonResolvedRefs)
	if ap.Spec.Action != meshv1alpha1.ActionAllow {
		t.Errorf("action defaulted to %q, want ALLOW", ap.Spec.Action)
	}

	remove(t, ms)
	waitForConditions(t, "target deleted", ap, conds, 1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonTargetNotFound)
}

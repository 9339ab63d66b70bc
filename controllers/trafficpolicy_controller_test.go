package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

func trafficPolicy(ns, name, target string, backends ...meshv1alpha1.Backend) *meshv1alpha1.TrafficPolicy {
	tp := &meshv1alpha1.TrafficPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: meshv1alpha1.TrafficPolicySpec{
			TargetRef: meshv1alpha1.PolicyTargetReference{Name: meshv1alpha1.ObjectName(target)},
		},
	}
	if len(backends) > 0 {
		tp.Spec.Routes = []meshv1alpha1.Route{{Name: "split", Backends: backends}}
	}
	return tp
}

// waitForConditions waits until obj, read with read, reports the given
// Accepted and ResolvedRefs reasons at generation gen, and returns the
// ResolvedRefs message.
func waitForConditions(t *testing.T, what string, obj client.Object, conds func() []metav1.Condition, gen int64, accepted, resolved string) string {
	t.Helper()
	var msg string
	eventually(t, what, func() error {
		if err := get(obj); err != nil {
			return err
		}
		for typ, reason := range map[string]string{meshv1alpha1.ConditionAccepted: accepted, meshv1alpha1.ConditionResolvedRefs: resolved} {
			status := metav1.ConditionFalse
			if reason == meshv1alpha1.ReasonAccepted || reason == meshv1alpha1.ReasonResolvedRefs {
				status = metav1.ConditionTrue
			}
			if err := hasCondition(conds(), typ, status, reason, gen); err != nil {
				return err
			}
		}
		msg = conditionOf(conds(), meshv1alpha1.ConditionResolvedRefs).Message
		return nil
	})
	return msg
}

// TestTrafficPolicyLifecycle drives a policy through a missing target, the
// target appearing, backends with a missing subset, a subset without pods,
// a service not exported to the policy's namespace, and its target going away.
func TestTrafficPolicyLifecycle(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	tp := trafficPolicy(ns, "catalog", "catalog",
		meshv1alpha1.Backend{Subset: "v1", Weight: ptr.To[int32](90)},
		meshv1alpha1.Backend{Subset: "v2", Weight: ptr.To[int32](10)},
	)
	create(t, tp)
	conds := func() []metav1.Condition { return tp.Status.Conditions }

	waitForConditions(t, "target missing", tp, conds, 1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonTargetNotFound)
	expectEvent(t, tp, corev1.EventTypeWarning, meshv1alpha1.ReasonTargetNotFound)

	create(t, service(ns, "catalog", map[string]string{"app": "catalog"}, 8080))
	create(t, meshService(ns, "catalog", "v1"))
	msg := waitForConditions(t, "subset v2 not declared", tp, conds, 1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonSubsetNotFound)
	if !strings.Contains(msg, "spec.routes[0].backends[1]") {
		t.Errorf("message %q does not name the backend", msg)
	}

	ms := meshService(ns, "catalog")
	if err := get(ms); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(ms.DeepCopy())
	ms.Spec.Subsets = meshService(ns, "catalog", "v1", "v2").Spec.Subsets
	if err := k8sClient.Patch(context.Background(), ms, patch); err != nil {
		t.Fatal(err)
	}
	create(t, pod(ns, "catalog-v1", "catalog", map[string]string{"app": "catalog", "version": "v1"}))
	waitForConditions(t, "subset v2 has no pods", tp, conds, 1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonSubsetHasNoPods)

	create(t, pod(ns, "catalog-v2", "catalog", map[string]string{"app": "catalog", "version": "v2"}))
	waitForConditions(t, "every backend resolves", tp, conds, 1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonResolvedRefs)
	expectEvent(t, tp, corev1.EventTypeNormal, meshv1alpha1.ReasonResolvedRefs)

	// A backend in another namespace that exports only to itself.
	private := meshService(other, "ledger")
	private.Spec.ExportTo = []string{"."}
	create(t, private)
	patch = client.MergeFrom(tp.DeepCopy())
	tp.Spec.Routes[0].Backends = append(tp.Spec.Routes[0].Backends, meshv1alpha1.Backend{Name: "ledger", Namespace: meshv1alpha1.ObjectName(other)})
	if err := k8sClient.Patch(context.Background(), tp, patch); err != nil {
		t.Fatal(err)
	}
	waitForConditions(t, "backend not exported", tp, conds, 2, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonNotExported)

	patch = client.MergeFrom(private.DeepCopy())
	private.Spec.ExportTo = []string{".", ns}
	if err := k8sClient.Patch(context.Background(), private, patch); err != nil {
		t.Fatal(err)
	}
	waitForConditions(t, "backend exported", tp, conds, 2, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonResolvedRefs)

	remove(t, ms)
	waitForConditions(t, "target deleted", tp, conds, 2, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonTargetNotFound)
}

// TestTrafficPolicyConflict: of two policies on the same service and port
// the older one wins; when it goes away, the other takes over. A policy on
// one port does not conflict with a service-wide one.
func TestTrafficPolicyConflict(t *testing.T) {
	ns := newNamespace(t)
	create(t, service(ns, "catalog", map[string]string{"app": "catalog"}, 8080, 9090))
	create(t, meshService(ns, "catalog"))

	first := trafficPolicy(ns, "first", "catalog")
	create(t, first)
	firstConds := func() []metav1.Condition { return first.Status.Conditions }
	waitForConditions(t, "first policy", first, firstConds, 1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonResolvedRefs)

	time.Sleep(1100 * time.Millisecond) // creation timestamps have a resolution of one second
	second := trafficPolicy(ns, "second", "catalog")
	create(t, second)
	secondConds := func() []metav1.Condition { return second.Status.Conditions }
	waitForConditions(t, "second policy conflicts", second, secondConds, 1, meshv1alpha1.ReasonConflicted, meshv1alpha1.ReasonResolvedRefs)
	if msg := conditionOf(second.Status.Conditions, meshv1alpha1.ConditionAccepted).Message; !strings.Contains(msg, "TrafficPolicy first") {
		t.Errorf("Conflicted message %q does not name the winner", msg)
	}
	expectEvent(t, second, corev1.EventTypeWarning, meshv1alpha1.ReasonConflicted)

	perPort := trafficPolicy(ns, "grpc-only", "catalog")
	perPort.Spec.TargetRef.Port = ptr.To[meshv1alpha1.PortNumber](9090)
	create(t, perPort)
	perPortConds := func() []metav1.Condition { return perPort.Status.Conditions }
	waitForConditions(t, "per-port policy", perPort, perPortConds, 1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonResolvedRefs)

	remove(t, first)
	waitForConditions(t, "second takes over", second, secondConds, 1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonResolvedRefs)

	badPort := trafficPolicy(ns, "bad-port", "catalog")
	badPort.Spec.TargetRef.Port = ptr.To[meshv1alpha1.PortNumber](7070)
	create(t, badPort)
	badPortConds := func() []metav1.Condition { return badPort.Status.Conditions }
	waitForConditions(t, "port the Service lacks", badPort, badPortConds, 1, meshv1alpha1.ReasonAccepted, meshv1alpha1.ReasonPortNotFound)
}

// TestTrafficPolicyInvalidRegex: a regular expression the API server cannot
// check is refused by the reconciler with the field named.
func TestTrafficPolicyInvalidRegex(t *testing.T) {
	ns := newNamespace(t)
	tp := trafficPolicy(ns, "regex", "catalog")
	tp.Spec.Routes = []meshv1alpha1.Route{{Matches: []meshv1alpha1.RouteMatch{{Path: &meshv1alpha1.PathMatch{Regex: ptr.To("/items/(\\d+")}}}}}
	create(t, tp)
	eventually(t, "invalid regex refused", func() error {
		if err := get(tp); err != nil {
			return err
		}
		if err := hasCondition(tp.Status.Conditions, meshv1alpha1.ConditionAccepted, metav1.ConditionFalse, meshv1alpha1.ReasonInvalid, 1); err != nil {
			return err
		}
		if msg := conditionOf(tp.Status.Conditions, meshv1alpha1.ConditionAccepted).Message; !strings.Contains(msg, "spec.routes[0].matches[0].path.regex") {
			return fmt.Errorf("message %q does not name the field", msg)
		}
		return nil
	})
}

package controllers

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

func service(ns, name string, selector map[string]string, ports ...int32) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Selector: selector},
	}
	for _, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: fmt.Sprintf("p%d", p), Port: p, TargetPort: intstr.FromInt32(p),
		})
	}
	return svc
}

func pod(ns, name, serviceAccount string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			ServiceAccountName: serviceAccount,
			Containers:         []corev1.Container{{Name: "app", Image: "registry.local/app:v1"}},
		},
	}
}

func meshService(ns, name string, subsets ...string) *meshv1alpha1.MeshService {
	ms := &meshv1alpha1.MeshService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, s := range subsets {
		ms.Spec.Subsets = append(ms.Spec.Subsets, meshv1alpha1.Subset{
			Name: meshv1alpha1.ObjectName(s), Labels: map[string]string{"version": s},
		})
	}
	return ms
}

// TestMeshServiceLifecycle drives a MeshService through a missing Service,
// the Service appearing, subsets without and then with pods, a spec change
// naming a port the Service lacks, and the Service's deletion.
func TestMeshServiceLifecycle(t *testing.T) {
	ns := newNamespace(t)
	ms := meshService(ns, "catalog", "v1", "v2")
	create(t, ms)

	expect := func(what string, gen int64, status metav1.ConditionStatus, reason string, extra func(*meshv1alpha1.MeshService) error) {
		t.Helper()
		eventually(t, what, func() error {
			if err := get(ms); err != nil {
				return err
			}
			if ms.Status.ObservedGeneration != gen {
				return fmt.Errorf("observedGeneration %d, want %d", ms.Status.ObservedGeneration, gen)
			}
			if err := hasCondition(ms.Status.Conditions, meshv1alpha1.ConditionAccepted, metav1.ConditionTrue, meshv1alpha1.ReasonAccepted, gen); err != nil {
				return err
			}
			if err := hasCondition(ms.Status.Conditions, meshv1alpha1.ConditionProgrammed, metav1.ConditionUnknown, meshv1alpha1.ReasonPending, gen); err != nil {
				return err
			}
			if err := hasCondition(ms.Status.Conditions, meshv1alpha1.ConditionResolvedRefs, status, reason, gen); err != nil {
				return err
			}
			if extra != nil {
				return extra(ms)
			}
			return nil
		})
	}

	expect("before its Service exists", 1, metav1.ConditionFalse, meshv1alpha1.ReasonServiceNotFound, nil)
	expectEvent(t, ms, corev1.EventTypeWarning, meshv1alpha1.ReasonServiceNotFound)

	create(t, service(ns, "catalog", map[string]string{"app": "catalog"}, 8080))
	expect("Service exists, no pods", 1, metav1.ConditionFalse, meshv1alpha1.ReasonSubsetHasNoPods, func(ms *meshv1alpha1.MeshService) error {
		if rr := conditionOf(ms.Status.Conditions, meshv1alpha1.ConditionResolvedRefs); !strings.Contains(rr.Message, "v1, v2") {
			return fmt.Errorf("message %q should name subsets v1 and v2", rr.Message)
		}
		return nil
	})

	create(t, pod(ns, "catalog-v1", "catalog", map[string]string{"app": "catalog", "version": "v1"}))
	expect("only v1 has a pod", 1, metav1.ConditionFalse, meshv1alpha1.ReasonSubsetHasNoPods, func(ms *meshv1alpha1.MeshService) error {
		rr := conditionOf(ms.Status.Conditions, meshv1alpha1.ConditionResolvedRefs)
		if !strings.Contains(rr.Message, "v2") || strings.Contains(rr.Message, "v1") {
			return fmt.Errorf("message %q should name v2 only", rr.Message)
		}
		return nil
	})

	create(t, pod(ns, "catalog-v2", "catalog-canary", map[string]string{"app": "catalog", "version": "v2"}))
	create(t, pod(ns, "unrelated", "other", map[string]string{"app": "other", "version": "v2"}))
	expect("both subsets have pods", 1, metav1.ConditionTrue, meshv1alpha1.ReasonResolvedRefs, func(ms *meshv1alpha1.MeshService) error {
		wantSubsets := []meshv1alpha1.SubsetStatus{{Name: "v1", Pods: 1}, {Name: "v2", Pods: 1}}
		wantIDs := []string{
			"spiffe://cluster.local/ns/" + ns + "/sa/catalog",
			"spiffe://cluster.local/ns/" + ns + "/sa/catalog-canary",
		}
		if ms.Status.Pods != 2 || !reflect.DeepEqual(ms.Status.Subsets, wantSubsets) || !reflect.DeepEqual(ms.Status.Identities, wantIDs) {
			return fmt.Errorf("pods %d subsets %v identities %v, want 2 %v %v", ms.Status.Pods, ms.Status.Subsets, ms.Status.Identities, wantSubsets, wantIDs)
		}
		return nil
	})
	expectEvent(t, ms, corev1.EventTypeNormal, meshv1alpha1.ReasonResolvedRefs)

	patch := client.MergeFrom(ms.DeepCopy())
	ms.Spec.Ports = []meshv1alpha1.MeshServicePort{{Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}, {Port: 9090, Protocol: meshv1alpha1.ProtocolGRPC}}
	if err := k8sClient.Patch(context.Background(), ms, patch); err != nil {
		t.Fatal(err)
	}
	expect("spec names port 9090 the Service lacks", 2, metav1.ConditionFalse, meshv1alpha1.ReasonPortNotFound, nil)

	remove(t, service(ns, "catalog", nil))
	expect("Service deleted", 2, metav1.ConditionFalse, meshv1alpha1.ReasonServiceNotFound, func(ms *meshv1alpha1.MeshService) error {
		if ms.Status.Pods != 0 || len(ms.Status.Identities) != 0 {
			return fmt.Errorf("pods %d identities %v after the Service went away", ms.Status.Pods, ms.Status.Identities)
		}
		return nil
	})
}

func conditionOf(conds []metav1.Condition, typ string) metav1.Condition {
	for _, c := range conds {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

// expectEvent waits for an Event of the given type and reason about obj.
func expectEvent(t *testing.T, obj client.Object, eventType, reason string) {
	t.Helper()
	eventually(t, "Event "+reason+" on "+obj.GetName(), func() error {
		list := &eventsv1.EventList{}
		if err := k8sClient.List(context.Background(), list, client.InNamespace(obj.GetNamespace())); err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name == obj.GetName() && e.Regarding.UID == obj.GetUID() {
				if e.Type == eventType && e.Reason == reason {
					return nil
				}
				seen = append(seen, e.Type+"/"+e.Reason)
			}
		}
		return fmt.Errorf("events seen: %v", seen)
	})
}

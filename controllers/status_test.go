package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/inject"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

func TestMeshServiceStatus(t *testing.T) {
	selector := map[string]string{"app": "catalog"}
	running := func(name, sa, version string) corev1.Pod {
		p := pod("shop", name, sa, map[string]string{"app": "catalog", "version": version})
		return *p
	}
	cases := []struct {
		name string
		// ms is the MeshService; obs what was read from the cluster.
		ms  *meshv1alpha1.MeshService
		obs meshServiceObservation
		// wantReason is the ResolvedRefs reason; wantMessage a fragment of its message.
		wantReason  string
		wantMessage string
		// wantPods is status.pods, wantUnmeshed status.unmeshedPods.
		wantPods, wantUnmeshed int32
	}{
		{name: "no Service", ms: meshService("shop", "catalog"), wantReason: meshv1alpha1.ReasonServiceNotFound, wantMessage: "Service shop/catalog does not exist"},
		{name: "Service without selector", ms: meshService("shop", "catalog"), obs: meshServiceObservation{service: service("shop", "catalog", nil, 80)},
			wantReason: meshv1alpha1.ReasonServiceHasNoSelector},
		{name: "declared port missing", ms: func() *meshv1alpha1.MeshService {
			ms := meshService("shop", "catalog")
			ms.Spec.Ports = []meshv1alpha1.MeshServicePort{{Port: 80}, {Port: 9090}}
			return ms
		}(), obs: meshServiceObservation{service: service("shop", "catalog", selector, 80, 8080)},
			wantReason: meshv1alpha1.ReasonPortNotFound, wantMessage: "names 9090, not a port of Service shop/catalog (it has 80, 8080)"},
		{name: "empty subset", ms: meshService("shop", "catalog", "v1", "v2"),
			obs:        meshServiceObservation{service: service("shop", "catalog", selector, 80), pods: []corev1.Pod{running("a", "sa", "v1")}},
			wantReason: meshv1alpha1.ReasonSubsetHasNoPods, wantMessage: "subsets v2 select no running pod", wantPods: 1},
		{name: "all resolved, no subsets, no pods", ms: meshService("shop", "catalog"),
			obs:        meshServiceObservation{service: service("shop", "catalog", selector, 80)},
			wantReason: meshv1alpha1.ReasonResolvedRefs, wantMessage: "selects 0 pods"},
		{name: "pods without the proxy in an enabled namespace", ms: meshService("shop", "catalog"),
			obs: meshServiceObservation{
				service:   service("shop", "catalog", selector, 80),
				namespace: namespace("shop", map[string]string{inject.AnnotationInject: inject.InjectEnabled}),
				pods: []corev1.Pod{running("a", "sa", "v1"), running("b", "sa", "v1"), func() corev1.Pod {
					p := running("c", "sa", "v1")
					p.Annotations = map[string]string{inject.AnnotationStatus: "{}"}
					return p
				}()},
			},
			wantReason: meshv1alpha1.ReasonResolvedRefs, wantPods: 3, wantUnmeshed: 2},
		{name: "pods without the proxy in a plain namespace are not unmeshed", ms: meshService("shop", "catalog"),
			obs: meshServiceObservation{
				service: service("shop", "catalog", selector, 80), namespace: namespace("shop", nil),
				pods: []corev1.Pod{running("a", "sa", "v1")},
			},
			wantReason: meshv1alpha1.ReasonResolvedRefs, wantPods: 1},
		{name: "serviceRef names another Service", ms: func() *meshv1alpha1.MeshService {
			ms := meshService("shop", "catalog")
			ms.Spec.ServiceRef = &meshv1alpha1.LocalServiceReference{Name: "catalog-svc"}
			return ms
		}(), wantReason: meshv1alpha1.ReasonServiceNotFound, wantMessage: "Service shop/catalog-svc does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.ms.Generation = 3
			tc.obs.settings = meshconfig.Defaults()
			st := meshServiceStatus(tc.ms, tc.obs)
			if st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration %d", st.ObservedGeneration)
			}
			ok := tc.wantReason == meshv1alpha1.ReasonResolvedRefs
			rr := conditionOf(st.Conditions, meshv1alpha1.ConditionResolvedRefs)
			if rr.Reason != tc.wantReason || (rr.Status == metav1.ConditionTrue) != ok || !strings.Contains(rr.Message, tc.wantMessage) || rr.ObservedGeneration != 3 {
				t.Errorf("ResolvedRefs %s/%s %q, want %s containing %q", rr.Status, rr.Reason, rr.Message, tc.wantReason, tc.wantMessage)
			}
			if st.Pods != tc.wantPods {
				t.Errorf("pods %d, want %d", st.Pods, tc.wantPods)
			}
			if st.UnmeshedPods != tc.wantUnmeshed {
				t.Errorf("unmeshedPods %d, want %d", st.UnmeshedPods, tc.wantUnmeshed)
			}
		})
	}
}

func TestIdentitiesAreSortedUniqueAndCapped(t *testing.T) {
	var pods []corev1.Pod
	for i := 0; i < 40; i++ {
		pods = append(pods, *pod("shop", "p", string(rune('a'+i%20))+"-sa", nil))
	}
	pods = append(pods, *pod("shop", "p", "", nil))
	ids := identities("shop", pods, meshconfig.Defaults())
	if len(ids) != maxIdentities {
		t.Fatalf("%d identities, want %d", len(ids), maxIdentities)
	}
	if ids[0] != "spiffe://cluster.local/ns/shop/sa/a-sa" {
		t.Errorf("first identity %q", ids[0])
	}
	if got := identities("shop", pods[40:], meshconfig.Defaults()); len(got) != 1 || got[0] != "spiffe://cluster.local/ns/shop/sa/default" {
		t.Errorf("pod without service account: %v, want the default one", got)
	}
}

func TestTrafficPolicyResolvedRefs(t *testing.T) {
	target := meshService("shop", "catalog", "v1")
	target.Status.Subsets = []meshv1alpha1.SubsetStatus{{Name: "v1", Pods: 0}}
	private := meshService("bank", "ledger")
	private.Spec.ExportTo = []string{"."}
	found := map[types.NamespacedName]*meshv1alpha1.MeshService{
		{Namespace: "shop", Name: "catalog"}: target,
		{Namespace: "bank", Name: "ledger"}:  private,
	}
	cases := []struct {
		name string
		// backends of the policy's one route; failover services.
		backends []meshv1alpha1.Backend
		failover []meshv1alpha1.ServiceReference
		// wantReason is the gravest problem's reason; wantParts fragments of the message.
		wantReason string
		wantParts  []string
	}{
		{name: "backend defaults to the target", backends: []meshv1alpha1.Backend{{}}, wantReason: meshv1alpha1.ReasonResolvedRefs},
		{name: "missing backend", backends: []meshv1alpha1.Backend{{Name: "nope"}},
			wantReason: meshv1alpha1.ReasonBackendNotFound, wantParts: []string{"spec.routes[0].backends[0]: MeshService shop/nope does not exist"}},
		{name: "not exported", backends: []meshv1alpha1.Backend{{Name: "ledger", Namespace: "bank"}},
			wantReason: meshv1alpha1.ReasonNotExported, wantParts: []string{"not exported to namespace shop"}},
		{name: "gravest reason wins, every problem listed", backends: []meshv1alpha1.Backend{{Subset: "v1"}, {Subset: "v9"}, {Name: "gone"}},
			wantReason: meshv1alpha1.ReasonBackendNotFound,
			wantParts:  []string{"backends[0]: subset \"v1\"", "backends[1]: MeshService shop/catalog has no subset \"v9\"", "backends[2]: MeshService shop/gone"}},
		{name: "missing failover service", failover: []meshv1alpha1.ServiceReference{{Name: "backup"}},
			wantReason: meshv1alpha1.ReasonBackendNotFound, wantParts: []string{"spec.failover.services[0]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tp := trafficPolicy("shop", "p", "catalog", tc.backends...)
			if tc.failover != nil {
				tp.Spec.Failover = &meshv1alpha1.Failover{Services: tc.failover}
			}
			rr := trafficPolicyResolvedRefs(tp, trafficPolicyObservation{target: target, services: found})
			if rr.Reason != tc.wantReason {
				t.Errorf("reason %s (%q), want %s", rr.Reason, rr.Message, tc.wantReason)
			}
			for _, part := range tc.wantParts {
				if !strings.Contains(rr.Message, part) {
					t.Errorf("message %q lacks %q", rr.Message, part)
				}
			}
		})
	}
}

func TestMergeConditionsKeepsTransitionTimes(t *testing.T) {
	old := metav1.NewTime(time.Unix(1700000000, 0))
	prev := []metav1.Condition{
		{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: old},
		{Type: "ResolvedRefs", Status: metav1.ConditionTrue, Reason: "ResolvedRefs", LastTransitionTime: old},
	}
	next := []metav1.Condition{
		{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted"},
		{Type: "ResolvedRefs", Status: metav1.ConditionFalse, Reason: "ServiceNotFound"},
	}
	got := mergeConditions(prev, next)
	if acc := conditionOf(got, "Accepted"); !acc.LastTransitionTime.Equal(&old) {
		t.Error("unchanged condition got a new transition time")
	}
	if rr := conditionOf(got, "ResolvedRefs"); rr.LastTransitionTime.Equal(&old) || rr.Reason != "ServiceNotFound" {
		t.Errorf("changed condition: %+v", rr)
	}
	if changed := changedConditions(prev, got); len(changed) != 1 || changed[0].Type != "ResolvedRefs" {
		t.Errorf("changedConditions = %v, want ResolvedRefs only", changed)
	}
	if again := mergeConditions(got, next); !conditionsEqual(again, got) {
		t.Errorf("merging the same conditions twice changed them: %v vs %v", again, got)
	}
}

func conditionsEqual(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStatusWriterSkipsUnchanged: an unchanged status is not written; the
// writer has no client here, so a write would panic.
func TestStatusWriterSkipsUnchanged(t *testing.T) {
	ms := meshService("shop", "catalog")
	ms.Status = meshServiceStatus(ms, meshServiceObservation{settings: meshconfig.Defaults()})
	same := ms.DeepCopy()
	same.Status.Conditions = mergeConditions(ms.Status.Conditions, meshServiceStatus(ms, meshServiceObservation{settings: meshconfig.Defaults()}).Conditions)
	if err := (statusWriter{}).write(context.Background(), ms, same, ms.Status, same.Status, ms.Status.Conditions, same.Status.Conditions); err != nil {
		t.Fatal(err)
	}
}

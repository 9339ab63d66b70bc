package controllers

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skeinmesh/skein/internal/meshconfig"
)

// TestMeshConfigAtRuntime changes the mesh-wide ConfigMap while the operator
// runs: a new trust domain shows in MeshService identities without a
// restart; a bad value is refused with an Event naming its key, and the last
// good trust domain stays in force.
func TestMeshConfigAtRuntime(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	create(t, service(ns, "web", map[string]string{"app": "web"}, 80))
	create(t, pod(ns, "web-0", "web", map[string]string{"app": "web"}))
	ms := meshService(ns, "web")
	create(t, ms)
	expectIdentity := func(what, trustDomain string) {
		t.Helper()
		want := []string{"spiffe://" + trustDomain + "/ns/" + ns + "/sa/web"}
		eventually(t, what, func() error {
			if err := get(ms); err != nil {
				return err
			}
			if !reflect.DeepEqual(ms.Status.Identities, want) {
				return fmt.Errorf("identities %v, want %v", ms.Status.Identities, want)
			}
			return nil
		})
	}
	expectIdentity("default trust domain", "cluster.local")

	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: configNamespace}}); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: configNamespace, Name: meshconfig.ConfigMapName},
		Data:       map[string]string{meshconfig.KeyTrustDomain: "example.org"},
	}
	create(t, cm)
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, cm) })
	expectIdentity("trust domain changed at runtime", "example.org")
	expectEvent(t, cm, corev1.EventTypeNormal, ReasonMeshConfigApplied)

	setData := func(data map[string]string) {
		t.Helper()
		patch := client.MergeFrom(cm.DeepCopy())
		cm.Data = data
		if err := k8sClient.Patch(ctx, cm, patch); err != nil {
			t.Fatal(err)
		}
	}
	setData(map[string]string{meshconfig.KeyTrustDomain: "Not A Domain", meshconfig.KeyAccessLogging: "true"})
	eventually(t, "bad value reported with its key", func() error {
		list := &eventsv1.EventList{}
		if err := k8sClient.List(ctx, list, client.InNamespace(configNamespace)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.UID == cm.UID && e.Reason == ReasonInvalidMeshConfig && e.Type == corev1.EventTypeWarning {
				if !strings.Contains(e.Note, `"trustDomain"`) || !strings.Contains(e.Note, "last good settings stay in force") {
					return fmt.Errorf("event note %q does not name the key and the outcome", e.Note)
				}
				return nil
			}
		}
		return fmt.Errorf("no %s event yet", ReasonInvalidMeshConfig)
	})
	// A pod that changes the MeshService's status makes it reconcile again
	// with whatever settings are in force: they must still be the last good ones.
	create(t, pod(ns, "web-1", "web", map[string]string{"app": "web"}))
	eventually(t, "second pod counted", func() error {
		if err := get(ms); err != nil {
			return err
		}
		if ms.Status.Pods != 2 {
			return fmt.Errorf("pods %d, want 2", ms.Status.Pods)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	expectIdentity("last good trust domain kept", "example.org")

	setData(map[string]string{meshconfig.KeyTrustDomain: "mesh.internal"})
	expectIdentity("a good value after a bad one applies", "mesh.internal")

	remove(t, cm)
	expectIdentity("ConfigMap deleted: defaults", "cluster.local")
}

// TestWebhookFailurePolicyFollowsMeshConfig: webhookFailurePolicy in the
// mesh-wide ConfigMap is what the injection webhook's configuration says.
func TestWebhookFailurePolicyFollowsMeshConfig(t *testing.T) {
	ctx := context.Background()
	fail := admissionregistrationv1.Fail
	hook := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: webhookConfiguration},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "inject.skein.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: configNamespace, Name: "skein-webhook-service", Path: ptr.To("/inject-pod"),
			}},
			FailurePolicy:           &fail,
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			// Matches no pod: this suite serves no webhook.
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"skein.io/never": "true"}},
		}},
	}
	create(t, hook)
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, hook) })
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: configNamespace}}); client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: configNamespace, Name: meshconfig.ConfigMapName},
		Data:       map[string]string{meshconfig.KeyWebhookFailurePolicy: "Ignore"},
	}
	create(t, cm)
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, cm) })
	expectPolicy := func(want admissionregistrationv1.FailurePolicyType) {
		t.Helper()
		eventually(t, "failurePolicy "+string(want), func() error {
			if err := get(hook); err != nil {
				return err
			}
			if p := hook.Webhooks[0].FailurePolicy; p == nil || *p != want {
				return fmt.Errorf("failurePolicy %v", p)
			}
			return nil
		})
	}
	expectPolicy(admissionregistrationv1.Ignore)
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data[meshconfig.KeyWebhookFailurePolicy] = "Fail"
	if err := k8sClient.Patch(ctx, cm, patch); err != nil {
		t.Fatal(err)
	}
	expectPolicy(admissionregistrationv1.Fail)
}

package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skeinmesh/skein/internal/inject"
)

// newAnnotatedNamespace creates a namespace for one test with annotations.
func newAnnotatedNamespace(t *testing.T, annotations map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-", Annotations: annotations}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// eventsAbout lists the Events with reason about obj.
func eventsAbout(obj client.Object, reason string) ([]eventsv1.Event, error) {
	list := &eventsv1.EventList{}
	if err := k8sClient.List(context.Background(), list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil, err
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.UID == obj.GetUID() && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out, nil
}

// expectUnmeshedGauge waits for skein_unmeshed_pods{namespace=ns} to be want.
func expectUnmeshedGauge(t *testing.T, ns string, want float64) {
	t.Helper()
	eventually(t, fmt.Sprintf("skein_unmeshed_pods{namespace=%q} = %v", ns, want), func() error {
		if got := testutil.ToFloat64(unmeshedPodsGauge.WithLabelValues(ns)); got != want {
			return fmt.Errorf("gauge is %v", got)
		}
		return nil
	})
}

// TestUnmeshedPodsAreReported: in a namespace that enables injection, a pod
// created without the proxy (this suite has no webhook) gets one Warning
// Event Unmeshed, and is counted in the metric and in the status of the
// MeshService selecting it; an injected pod, and a pod of a plain
// namespace, are not.
func TestUnmeshedPodsAreReported(t *testing.T) {
	ctx := context.Background()
	ns := newAnnotatedNamespace(t, map[string]string{inject.AnnotationInject: inject.InjectEnabled})
	create(t, service(ns, "web", map[string]string{"app": "web"}, 8080))
	ms := meshService(ns, "web")
	create(t, ms)

	bare := pod(ns, "web-bare", "web", map[string]string{"app": "web"})
	create(t, bare)
	injected := pod(ns, "web-injected", "web", map[string]string{"app": "web"})
	injected.Annotations = map[string]string{inject.AnnotationStatus: `{"version":"dev"}`}
	create(t, injected)

	expectEvent(t, bare, corev1.EventTypeWarning, ReasonUnmeshed)
	expectUnmeshedGauge(t, ns, 1)
	eventually(t, "MeshService counts one unmeshed pod of two", func() error {
		if err := get(ms); err != nil {
			return err
		}
		if ms.Status.Pods != 2 || ms.Status.UnmeshedPods != 1 {
			return fmt.Errorf("pods %d unmeshedPods %d, want 2 and 1", ms.Status.Pods, ms.Status.UnmeshedPods)
		}
		return nil
	})
	if err := get(bare); err != nil {
		t.Fatal(err)
	}
	reportedAt := bare.Annotations[AnnotationUnmeshedReported]
	if reportedAt == "" {
		t.Fatalf("pod %s has no %s annotation", bare.Name, AnnotationUnmeshedReported)
	}
	if evs, err := eventsAbout(injected, ReasonUnmeshed); err != nil || len(evs) > 0 {
		t.Errorf("injected pod: Unmeshed Events %v (%v)", evs, err)
	}

	// A change to the pod reconciles its namespace again, a second later so
	// that a new report would carry a new time: no second Event.
	time.Sleep(1100 * time.Millisecond)
	patch := client.MergeFrom(bare.DeepCopy())
	bare.Labels["touched"] = "yes"
	if err := k8sClient.Patch(ctx, bare, patch); err != nil {
		t.Fatal(err)
	}
	// A second unmeshed pod, reported after the change, shows the namespace was reconciled since.
	second := pod(ns, "web-second", "web", map[string]string{"app": "web"})
	create(t, second)
	expectEvent(t, second, corev1.EventTypeWarning, ReasonUnmeshed)
	expectUnmeshedGauge(t, ns, 2)
	time.Sleep(500 * time.Millisecond) // Events are written asynchronously.
	evs, err := eventsAbout(bare, ReasonUnmeshed)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Series != nil {
		t.Errorf("pod %s has Unmeshed Events %v, want exactly one, recorded once", bare.Name, evs)
	}
	if err := get(bare); err != nil {
		t.Fatal(err)
	}
	if got := bare.Annotations[AnnotationUnmeshedReported]; got != reportedAt {
		t.Errorf("pod reported again: %s %q, was %q", AnnotationUnmeshedReported, got, reportedAt)
	}

	remove(t, second)
	expectUnmeshedGauge(t, ns, 1)

	plainNS := newNamespace(t)
	plain := pod(plainNS, "web", "web", map[string]string{"app": "web"})
	create(t, plain)
	expectUnmeshedGauge(t, plainNS, 0)
	time.Sleep(500 * time.Millisecond)
	if evs, err := eventsAbout(plain, ReasonUnmeshed); err != nil || len(evs) > 0 {
		t.Errorf("pod of a plain namespace: Unmeshed Events %v (%v)", evs, err)
	}

	// Enabling the plain namespace makes its pod unmeshed, and its
	// MeshService, which watches the namespace, says so.
	create(t, service(plainNS, "web", map[string]string{"app": "web"}, 8080))
	plainMS := meshService(plainNS, "web")
	create(t, plainMS)
	eventually(t, "MeshService of a plain namespace sees its pod", func() error {
		if err := get(plainMS); err != nil {
			return err
		}
		if plainMS.Status.Pods != 1 || plainMS.Status.UnmeshedPods != 0 {
			return fmt.Errorf("pods %d unmeshedPods %d, want 1 and 0", plainMS.Status.Pods, plainMS.Status.UnmeshedPods)
		}
		return nil
	})
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: plainNS}}
	if err := get(nsObj); err != nil {
		t.Fatal(err)
	}
	patch = client.MergeFrom(nsObj.DeepCopy())
	metav1.SetMetaDataAnnotation(&nsObj.ObjectMeta, inject.AnnotationInject, inject.InjectEnabled)
	if err := k8sClient.Patch(ctx, nsObj, patch); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, plain, corev1.EventTypeWarning, ReasonUnmeshed)
	expectUnmeshedGauge(t, plainNS, 1)
	eventually(t, "MeshService counts the pod once its namespace is enabled", func() error {
		if err := get(plainMS); err != nil {
			return err
		}
		if plainMS.Status.UnmeshedPods != 1 {
			return fmt.Errorf("unmeshedPods %d, want 1", plainMS.Status.UnmeshedPods)
		}
		return nil
	})

	// Turning injection off again changes no pod: only the namespace's own
	// change can bring the count back to 0.
	if err := get(nsObj); err != nil {
		t.Fatal(err)
	}
	patch = client.MergeFrom(nsObj.DeepCopy())
	delete(nsObj.Annotations, inject.AnnotationInject)
	if err := k8sClient.Patch(ctx, nsObj, patch); err != nil {
		t.Fatal(err)
	}
	expectUnmeshedGauge(t, plainNS, 0)
	eventually(t, "MeshService counts no unmeshed pod once injection is off", func() error {
		if err := get(plainMS); err != nil {
			return err
		}
		if plainMS.Status.UnmeshedPods != 0 {
			return fmt.Errorf("unmeshedPods %d, want 0", plainMS.Status.UnmeshedPods)
		}
		return nil
	})
}

// TestUnmeshedPodsRestart: where restart is on, an unmeshed pod of a
// Deployment (through its ReplicaSet, both made by hand: envtest runs no
// controllers) gets the Deployment's pod template annotated once, like
// kubectl rollout restart, and so does a StatefulSet's; a bare pod and a
// Job's pod are reported and left alone, and so is the Job.
func TestUnmeshedPodsRestart(t *testing.T) {
	ns := newAnnotatedNamespace(t, map[string]string{
		inject.AnnotationInject:       inject.InjectEnabled,
		AnnotationRestartUnmeshedPods: "true",
	})
	labels := map[string]string{"app": "web"}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       pod(ns, "", "web", labels).Spec,
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}
	create(t, dep)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-5d8f", OwnerReferences: []metav1.OwnerReference{controllerRef(dep, "Deployment")}},
		Spec:       appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}
	create(t, rs)
	first := pod(ns, "web-5d8f-a", "web", labels)
	first.OwnerReferences = []metav1.OwnerReference{controllerRef(rs, "ReplicaSet")}
	create(t, first)
	bare := pod(ns, "lonely", "web", map[string]string{"app": "lonely"})
	create(t, bare)
	dbLabels := map[string]string{"app": "db"}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: dbLabels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: dbLabels}, Spec: template.Spec,
		}},
	}
	create(t, sts)
	dbPod := pod(ns, "db-0", "db", dbLabels)
	dbPod.OwnerReferences = []metav1.OwnerReference{controllerRef(sts, "StatefulSet")}
	create(t, dbPod)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "migrate"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: func() corev1.PodSpec {
			spec := template.Spec
			spec.RestartPolicy = corev1.RestartPolicyNever
			return spec
		}()}},
	}
	create(t, job)
	jobPod := pod(ns, "migrate-x", "web", map[string]string{"job": "migrate"})
	jobPod.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))}
	create(t, jobPod)

	var restartedAt string
	eventually(t, "Deployment restarted", func() error {
		if err := get(dep); err != nil {
			return err
		}
		if restartedAt = dep.Spec.Template.Annotations[AnnotationRestartedAt]; restartedAt == "" {
			return fmt.Errorf("template annotations %v", dep.Spec.Template.Annotations)
		}
		return nil
	})
	generation := dep.Generation
	expectEvent(t, dep, corev1.EventTypeNormal, ReasonRestartedUnmeshed)
	expectEvent(t, first, corev1.EventTypeWarning, ReasonUnmeshed)
	expectEvent(t, bare, corev1.EventTypeWarning, ReasonUnmeshed)
	expectEvent(t, jobPod, corev1.EventTypeWarning, ReasonUnmeshed)
	eventually(t, "StatefulSet restarted", func() error {
		if err := get(sts); err != nil {
			return err
		}
		if sts.Spec.Template.Annotations[AnnotationRestartedAt] == "" {
			return fmt.Errorf("template annotations %v", sts.Spec.Template.Annotations)
		}
		return nil
	})

	// Another pod of the same ReplicaSet, created after the restart and
	// still without the proxy, must not restart the Deployment again.
	time.Sleep(1100 * time.Millisecond)
	second := pod(ns, "web-5d8f-b", "web", labels)
	second.OwnerReferences = []metav1.OwnerReference{controllerRef(rs, "ReplicaSet")}
	create(t, second)
	expectEvent(t, second, corev1.EventTypeWarning, ReasonUnmeshed)
	expectUnmeshedGauge(t, ns, 5)
	if err := get(dep); err != nil {
		t.Fatal(err)
	}
	if got := dep.Spec.Template.Annotations[AnnotationRestartedAt]; got != restartedAt || dep.Generation != generation {
		t.Errorf("Deployment restarted again: %s %q (was %q), generation %d (was %d)",
			AnnotationRestartedAt, got, restartedAt, dep.Generation, generation)
	}
	for _, p := range []*corev1.Pod{bare, jobPod} {
		if err := get(p); err != nil || p.DeletionTimestamp != nil {
			t.Errorf("pod %s: %v, deletionTimestamp %v; it must be left alone", p.Name, err, p.DeletionTimestamp)
		}
	}
	if err := get(job); err != nil || job.Generation != 1 || job.DeletionTimestamp != nil {
		t.Errorf("Job: %v, generation %d, deletionTimestamp %v; it must be left alone", err, job.Generation, job.DeletionTimestamp)
	}
	evs, err := eventsAbout(jobPod, ReasonUnmeshed)
	if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Note, "does not restart its Job migrate") {
		t.Errorf("Job's pod: Unmeshed Events %v (%v), want one saying Skein does not restart the Job", evs, err)
	}
}

func controllerRef(owner client.Object, kind string) metav1.OwnerReference {
	return *metav1.NewControllerRef(owner, appsv1.SchemeGroupVersion.WithKind(kind))
}

// TestSkippedPodsGetTheirReasonAsAnEvent: the webhook leaves the reason it
// did not inject a pod on the pod (inject.AnnotationSkipped); the operator
// turns it into one Normal Event with that reason and the decision's words.
func TestSkippedPodsGetTheirReasonAsAnEvent(t *testing.T) {
	ns := newAnnotatedNamespace(t, map[string]string{inject.AnnotationInject: inject.InjectEnabled})
	host := pod(ns, "on-host", "web", map[string]string{"app": "web"})
	host.Spec.HostNetwork = true
	host.Annotations = map[string]string{inject.AnnotationSkipped: string(inject.HostNetwork)}
	create(t, host)
	expectEvent(t, host, corev1.EventTypeNormal, string(inject.HostNetwork))

	// Touching the pod does not repeat the Event.
	if err := get(host); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(host.DeepCopy())
	host.Labels["touched"] = "yes"
	if err := k8sClient.Patch(context.Background(), host, patch); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	list := &eventsv1.EventList{}
	if err := k8sClient.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range list.Items {
		if e.Regarding.UID == host.UID && e.Reason == string(inject.HostNetwork) {
			n++
			if !strings.Contains(e.Note, "host") {
				t.Errorf("event note %q does not say why", e.Note)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d %s Events, want exactly one", n, inject.HostNetwork)
	}
}

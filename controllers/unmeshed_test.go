package controllers

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skeinmesh/skein/internal/inject"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

func namespace(name string, annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
}

func TestUnmeshed(t *testing.T) {
	enabled := namespace("shop", map[string]string{inject.AnnotationInject: inject.InjectEnabled})
	plain := namespace("shop", nil)
	withPod := func(change func(p *corev1.Pod)) *corev1.Pod {
		p := pod("shop", "web-1", "web", map[string]string{"app": "web"})
		p.Status.Phase = corev1.PodRunning
		if change != nil {
			change(p)
		}
		return p
	}
	cases := []struct {
		name string
		// pod is the live pod, ns its namespace.
		pod *corev1.Pod
		ns  *corev1.Namespace
		// want is whether the pod is unmeshed; wantReason why it should have the proxy.
		want       bool
		wantReason inject.Reason
	}{
		{name: "enabled namespace, no proxy", pod: withPod(nil), ns: enabled, want: true, wantReason: inject.Injected},
		{name: "pending pod counts too", pod: withPod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }), ns: enabled,
			want: true, wantReason: inject.Injected},
		{name: "pod opted in, plain namespace", pod: withPod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{inject.AnnotationInject: inject.InjectEnabled}
		}), ns: plain, want: true, wantReason: inject.PodOptedIn},
		{name: "enabled by label", pod: withPod(nil), ns: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: "shop", Labels: map[string]string{inject.AnnotationInject: inject.InjectEnabled}}}, want: true, wantReason: inject.Injected},
		{name: "injected", pod: withPod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{inject.AnnotationStatus: `{"version":"dev"}`}
		}), ns: enabled},
		{name: "plain namespace", pod: withPod(nil), ns: plain},
		{name: "no namespace read", pod: withPod(nil), ns: nil},
		{name: "pod opted out", pod: withPod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{inject.AnnotationInject: inject.InjectDisabled}
		}), ns: enabled},
		{name: "host network", pod: withPod(func(p *corev1.Pod) { p.Spec.HostNetwork = true }), ns: enabled},
		{name: "succeeded", pod: withPod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), ns: enabled},
		{name: "failed", pod: withPod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }), ns: enabled},
		{name: "being deleted", pod: withPod(func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1e9, 0)} }), ns: enabled},
		{name: "control-plane namespace", pod: withPod(func(p *corev1.Pod) { p.Namespace = "kube-system" }),
			ns: namespace("kube-system", map[string]string{inject.AnnotationInject: inject.InjectEnabled})},
		{name: "refused by the webhook, not restartable into the mesh", pod: withPod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{inject.AnnotationProxyCPU: "lots"}
		}), ns: enabled},
	}
	cfg := inject.NewConfig(meshconfig.Defaults())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, got := unmeshed(tc.pod, tc.ns, cfg)
			if got != tc.want {
				t.Fatalf("unmeshed = %v (%s: %s), want %v", got, d.Reason, d.Message, tc.want)
			}
			if got && d.Reason != tc.wantReason {
				t.Errorf("reason %s, want %s", d.Reason, tc.wantReason)
			}
		})
	}
}

func TestRestartEnabled(t *testing.T) {
	on, off := meshconfig.Defaults(), meshconfig.Defaults()
	on.RestartUnmeshedPods = true
	cases := []struct {
		name string
		// ns is the namespace, settings the mesh-wide ones.
		ns       *corev1.Namespace
		settings meshconfig.Settings
		want     bool
	}{
		{name: "default is off", ns: namespace("shop", nil), settings: off},
		{name: "mesh-wide on", ns: namespace("shop", nil), settings: on, want: true},
		{name: "namespace turns it on", ns: namespace("shop", map[string]string{AnnotationRestartUnmeshedPods: "true"}), settings: off, want: true},
		{name: "namespace turns it off", ns: namespace("shop", map[string]string{AnnotationRestartUnmeshedPods: "false"}), settings: on},
		{name: "bad namespace value falls back", ns: namespace("shop", map[string]string{AnnotationRestartUnmeshedPods: "sometimes"}), settings: on, want: true},
		{name: "no namespace", settings: on, want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := restartEnabled(tc.ns, tc.settings); got != tc.want {
				t.Errorf("restartEnabled = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRestartDue(t *testing.T) {
	last := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	stamp := last.Format(time.RFC3339)
	cases := []struct {
		name string
		// restartedAt is the workload's annotation; created the pod's creation time.
		restartedAt string
		created     time.Time
		want        bool
	}{
		{name: "never restarted", created: last, want: true},
		{name: "unreadable annotation", restartedAt: "yesterday", created: last, want: true},
		{name: "pod older than the restart, which replaces it", restartedAt: stamp, created: last.Add(-time.Hour)},
		{name: "pod created by the restart, same second", restartedAt: stamp, created: last},
		{name: "pod created soon after the restart: the webhook is still not injecting", restartedAt: stamp, created: last.Add(restartQuietPeriod - time.Second)},
		{name: "pod of a later outage", restartedAt: stamp, created: last.Add(restartQuietPeriod), want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := restartDue(tc.restartedAt, tc.created); got != tc.want {
				t.Errorf("restartDue = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUnmeshedMessage(t *testing.T) {
	d := inject.Decision{Inject: true, Reason: inject.Injected, Message: "namespace shop has annotation skein.io/inject: enabled"}
	rs := &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f"}
	job := &metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: "migrate"}
	dep := &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	cases := []struct {
		name string
		// owner is the pod's controller, workload what Skein can restart.
		owner, workload *metav1.OwnerReference
		restart         bool
		// want are fragments of the message.
		want []string
	}{
		{name: "bare pod", want: []string{"no workload that Skein could restart", "delete it"}},
		{name: "Job's pod", owner: job, want: []string{"does not restart its Job migrate"}},
		{name: "restart on", owner: rs, workload: dep, restart: true, want: []string{"Skein restarts its Deployment web"}},
		{name: "restart off", owner: rs, workload: dep, want: []string{"kubectl rollout restart", "Deployment web", "restartUnmeshedPods"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := unmeshedMessage(d, tc.owner, tc.workload, tc.restart)
			for _, w := range append(tc.want, d.Message, "without the Skein proxy", "webhook was unreachable") {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
}

package webhook

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skeinmesh/skein/controllers"
	"github.com/skeinmesh/skein/internal/inject"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// appPod is a one-container pod in namespace ns. It names its service
// account because envtest's API server runs without the ServiceAccount
// admission plugin, which in a cluster sets it before webhooks are called;
// the API server refuses the proxy's projected token without one.
func appPod(ns string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: ns},
		Spec: corev1.PodSpec{ServiceAccountName: "default", Containers: []corev1.Container{{
			Name: "app", Image: "registry.example/app:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func annotate(key, value string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[key] = value
	}
}

// createPod creates pod through the API server; on success pod holds what
// the API server stored.
func createPod(pod *corev1.Pod) error {
	return k8sClient.Create(context.Background(), pod)
}

func mustCreatePod(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	if err := createPod(pod); err != nil {
		t.Fatalf("create pod in %s: %v", pod.Namespace, err)
	}
	return pod
}

func names(cs []corev1.Container) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// skeinAnnotations are the pod's annotations under skein.io/.
func skeinAnnotations(p *corev1.Pod) []string {
	var out []string
	for k := range p.Annotations {
		if strings.HasPrefix(k, "skein.io/") {
			out = append(out, k)
		}
	}
	return out
}

// checkInjected fails unless pod has skein-init first, skein-proxy as a
// native sidecar right after it, its app container untouched in place, and
// the status annotation.
func checkInjected(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if got := names(pod.Spec.InitContainers); len(got) != 2 || got[0] != inject.InitContainerName || got[1] != inject.ProxyContainerName {
		t.Fatalf("init containers = %v, want [%s %s]", got, inject.InitContainerName, inject.ProxyContainerName)
	}
	proxy := pod.Spec.InitContainers[1]
	if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("skein-proxy restartPolicy = %v, want Always (native sidecar on a 1.37 API server)", proxy.RestartPolicy)
	}
	if got := names(pod.Spec.Containers); len(got) != 1 || got[0] != "app" {
		t.Errorf("containers = %v, want [app]", got)
	}
	if _, ok := pod.Annotations[inject.AnnotationStatus]; !ok {
		t.Errorf("no %s annotation in %v", inject.AnnotationStatus, pod.Annotations)
	}
}

// checkUntouched fails unless pod has only its app container and no skein.io/ annotation.
func checkUntouched(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if len(pod.Spec.InitContainers) != 0 {
		t.Errorf("init containers = %v, want none", names(pod.Spec.InitContainers))
	}
	if got := names(pod.Spec.Containers); len(got) != 1 || got[0] != "app" {
		t.Errorf("containers = %v, want [app]", got)
	}
	if got := skeinAnnotations(pod); len(got) != 0 {
		t.Errorf("skein.io/ annotations %v on a pod Skein should leave alone", got)
	}
}

func TestPodInEnabledNamespaceIsInjected(t *testing.T) {
	pod := mustCreatePod(t, appPod(enabledNamespace(t)))
	checkInjected(t, pod)
	if img := pod.Spec.InitContainers[1].Image; img != meshconfig.Defaults().ProxyImage {
		t.Errorf("skein-proxy image = %s, want the default %s", img, meshconfig.Defaults().ProxyImage)
	}
	if _, ok := pod.Annotations[inject.AnnotationSkipped]; ok {
		t.Errorf("an injected pod carries %s", inject.AnnotationSkipped)
	}
}

func TestPodOptedInInPlainNamespaceIsInjected(t *testing.T) {
	pod := mustCreatePod(t, appPod(newNamespace(t, nil), annotate(inject.AnnotationInject, inject.InjectEnabled)))
	checkInjected(t, pod)
}

func TestMeshSettingsAreReadAtEveryRequest(t *testing.T) {
	prev := settings.Current()
	t.Cleanup(func() { settings.Set(prev) })
	next := prev
	next.ProxyImage = "registry.example/skein-proxy:next"
	settings.Set(next)

	pod := mustCreatePod(t, appPod(enabledNamespace(t)))
	checkInjected(t, pod)
	if img := pod.Spec.InitContainers[1].Image; img != next.ProxyImage {
		t.Errorf("skein-proxy image = %s, want %s from the settings in force", img, next.ProxyImage)
	}
}

func TestPodInPlainNamespaceIsUntouched(t *testing.T) {
	pod := mustCreatePod(t, appPod(newNamespace(t, nil)))
	checkUntouched(t, pod)
}

func TestInvalidAnnotationIsRefused(t *testing.T) {
	ns := enabledNamespace(t)
	err := createPod(appPod(ns, annotate(inject.AnnotationProxyCPU, "lots")))
	if err == nil {
		t.Fatal("a pod with skein.io/proxy-cpu: lots was admitted")
	}
	for _, want := range []string{`"inject.skein.io" denied the request`, inject.AnnotationProxyCPU, "lots"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	var pods corev1.PodList
	if err := k8sClient.List(context.Background(), &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("%d pods in %s after a refusal", len(pods.Items), ns)
	}
}

func TestSkippedPodCarriesItsReason(t *testing.T) {
	cases := []struct {
		name string
		// pod changes the app pod.
		pod func(*corev1.Pod)
		// want is the reason the pod should carry.
		want inject.Reason
	}{
		{name: "host network", pod: func(p *corev1.Pod) { p.Spec.HostNetwork = true }, want: inject.HostNetwork},
		{name: "opted out", pod: annotate(inject.AnnotationInject, inject.InjectDisabled), want: inject.PodOptedOut},
	}
	ns := enabledNamespace(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := mustCreatePod(t, appPod(ns, tc.pod))
			if got := pod.Annotations[inject.AnnotationSkipped]; got != string(tc.want) {
				t.Errorf("%s = %q, want %q", inject.AnnotationSkipped, got, tc.want)
			}
			if len(pod.Spec.InitContainers) != 0 || len(pod.Spec.Containers) != 1 {
				t.Errorf("containers %v, init containers %v: the pod was injected",
					names(pod.Spec.Containers), names(pod.Spec.InitContainers))
			}
		})
	}
}

// TestUnreachableWebhook runs last: it repoints the webhook configuration
// (restoring it at the end). With the default failurePolicy Fail, an
// unreachable webhook refuses pods of enabled namespaces; with Ignore, they
// are created without a sidecar.
func TestUnreachableWebhook(t *testing.T) {
	ctx := context.Background()
	key := client.ObjectKey{Name: "skein-injector"}
	var orig admissionregistrationv1.MutatingWebhookConfiguration
	if err := k8sClient.Get(ctx, key, &orig); err != nil {
		t.Fatal(err)
	}
	if p := orig.Webhooks[0].FailurePolicy; p == nil || string(*p) != string(meshconfig.Defaults().WebhookFailurePolicy) {
		t.Errorf("config/webhook's failurePolicy is not the mesh default %s", meshconfig.Defaults().WebhookFailurePolicy)
	}
	setWebhook := func(t *testing.T, edit func(*admissionregistrationv1.MutatingWebhook)) {
		t.Helper()
		var c admissionregistrationv1.MutatingWebhookConfiguration
		if err := k8sClient.Get(ctx, key, &c); err != nil {
			t.Fatal(err)
		}
		edit(&c.Webhooks[0])
		if err := k8sClient.Update(ctx, &c); err != nil {
			t.Fatalf("update %s: %v", key.Name, err)
		}
	}
	t.Cleanup(func() {
		setWebhook(t, func(w *admissionregistrationv1.MutatingWebhook) {
			w.ClientConfig, w.FailurePolicy = orig.Webhooks[0].ClientConfig, orig.Webhooks[0].FailurePolicy
		})
		ns := enabledNamespace(t)
		eventually(t, "webhook restored", func() error {
			pod := appPod(ns)
			if err := createPod(pod); err != nil {
				return err
			}
			if len(pod.Spec.InitContainers) == 0 {
				return fmt.Errorf("pod not injected yet")
			}
			return nil
		})
	})

	closed := closedURL(t)
	setWebhook(t, func(w *admissionregistrationv1.MutatingWebhook) { w.ClientConfig.URL = &closed })
	// Until the API server sees the change, pods may still be injected:
	// those land in this namespace, which is not checked further.
	ns := enabledNamespace(t)
	eventually(t, "pod refused while the webhook is unreachable (failurePolicy Fail)", func() error {
		err := createPod(appPod(ns))
		if err == nil {
			return fmt.Errorf("pod admitted")
		}
		if !strings.Contains(err.Error(), "failed calling webhook") {
			t.Fatalf("pod refused for another reason: %v", err)
		}
		return nil
	})

	ignore := admissionregistrationv1.Ignore
	setWebhook(t, func(w *admissionregistrationv1.MutatingWebhook) { w.FailurePolicy = &ignore })
	ns = enabledNamespace(t)
	var pod *corev1.Pod
	eventually(t, "pod admitted while the webhook is unreachable (failurePolicy Ignore)", func() error {
		pod = appPod(ns)
		return createPod(pod)
	})
	checkUntouched(t, pod)
	eventually(t, "the operator reports the pod admitted without its proxy", func() error {
		list := &eventsv1.EventList{}
		if err := k8sClient.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Name == pod.Name && e.Reason == controllers.ReasonUnmeshed && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("no Warning %s Event about pod %s among %d", controllers.ReasonUnmeshed, pod.Name, len(list.Items))
	})
}

// closedURL is an https URL of a port on 127.0.0.1 where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "https://" + addr + Path
}

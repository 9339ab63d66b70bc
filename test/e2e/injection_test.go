//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const echoImage = "docker.io/skeinmesh/test-echo:dev"

var meshed = map[string]string{"skein.io/inject": "enabled"}

// echoDeployment is a Deployment of the echo backend with an HTTP
// readiness probe, which injection rewrites to go through the proxy.
func echoDeployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "echo", Image: echoImage,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}
}

// readyPods waits until the Deployment has want Ready pods and returns them.
func readyPods(t *testing.T, dep *appsv1.Deployment, want int, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var ready []corev1.Pod
	eventually(t, timeout, "pods of "+dep.Name+" Ready", func() error {
		pods := &corev1.PodList{}
		if err := k8s.List(t.Context(), pods, client.InNamespace(dep.Namespace), client.MatchingLabels(dep.Spec.Selector.MatchLabels)); err != nil {
			return err
		}
		ready = ready[:0]
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				ready = append(ready, p)
			}
		}
		if len(ready) != want {
			return fmt.Errorf("%d of %d pods Ready", len(ready), want)
		}
		return nil
	})
	return ready
}

// TestInjectedDeploymentServesThroughItsProxy: a Deployment in a meshed
// namespace gets skein-init and the native-sidecar proxy, its pods become
// Ready (their probes go through the proxy), the nat rules are in the pod's
// network namespace, and a request to its Service reaches the app through
// the proxy's inbound side (the app sees the proxy's 127.0.0.6).
func TestInjectedDeploymentServesThroughItsProxy(t *testing.T) {
	ns := newNamespace(t, meshed)
	dep := echoDeployment(ns, "echo", 1)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "echo"},
		Spec: corev1.ServiceSpec{Selector: dep.Spec.Selector.MatchLabels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	for _, obj := range []client.Object{dep, svc} {
		if err := k8s.Create(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	pod := readyPods(t, dep, 1, 3*time.Minute)[0]

	inits := pod.Spec.InitContainers
	if len(inits) < 2 || inits[0].Name != "skein-init" || inits[1].Name != "skein-proxy" ||
		inits[1].RestartPolicy == nil || *inits[1].RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Fatalf("init containers %v: want skein-init, then skein-proxy as a native sidecar", containerNames(inits))
	}
	if pod.Annotations["skein.io/status"] == "" {
		t.Error("the injected pod has no skein.io/status annotation")
	}

	rules := natRules(t, pod.Status.PodIP)
	for _, want := range []string{"-A PREROUTING -p tcp -j SKEIN_INBOUND", "-j REDIRECT --to-ports 15006", "-j REDIRECT --to-ports 15001", "--uid-owner 7117"} {
		if !strings.Contains(rules, want) {
			t.Errorf("the pod's nat table lacks %q:\n%s", want, rules)
		}
	}

	if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(svc), svc); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the Service answers through the proxy", func() error {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + svc.Spec.ClusterIP + "/hello")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var echo struct {
			RemoteAddr string `json:"remoteAddr"`
		}
		if err := json.Unmarshal(body, &echo); err != nil {
			return fmt.Errorf("%d %s: %v", resp.StatusCode, body, err)
		}
		if !strings.HasPrefix(echo.RemoteAddr, "127.0.0.6:") {
			return fmt.Errorf("the app saw the caller as %s, not the proxy's 127.0.0.6", echo.RemoteAddr)
		}
		return nil
	})
}

// TestJobCompletesWithItsSidecar: with the proxy as a native sidecar, a
// Job's pod completes when its app container exits. The app here is
// `skein-proxy wait`, which exits 0 once the pod's proxy is ready.
func TestJobCompletesWithItsSidecar(t *testing.T) {
	ns := newNamespace(t, meshed)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "once"},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{
					Name: "check", Image: "docker.io/skeinmesh/skein-proxy:dev",
					Command: []string{"/skein-proxy", "wait", "--timeout", "60s"},
				}},
			}},
		},
	}
	if err := k8s.Create(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Minute, "Job complete", func() error {
		if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(job), job); err != nil {
			return err
		}
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				t.Fatalf("the Job failed: %s", c.Message)
			}
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", job.Status.Conditions)
	})
}

func containerNames(cs []corev1.Container) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

// natRules is `iptables-save -t nat` inside the network namespace of the
// pod with address ip, found among the local cluster's pod namespaces.
func natRules(t *testing.T, ip string) string {
	t.Helper()
	state := os.Getenv("CLUSTER_STATE")
	if state == "" {
		state = "/var/lib/skein-cluster"
	}
	netns, _ := filepath.Glob(filepath.Join(state, "run/containerd/io.containerd.grpc.v1.cri/netns/cni-*"))
	for _, ns := range netns {
		addrs, err := exec.Command("nsenter", "--net="+ns, "ip", "-4", "-o", "addr").Output()
		if err != nil || !strings.Contains(string(addrs), " "+ip+"/") {
			continue
		}
		out, err := exec.Command("nsenter", "--net="+ns, "iptables-save", "-t", "nat").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables-save in the pod's namespace: %v: %s", err, out)
		}
		return string(out)
	}
	t.Fatalf("no pod network namespace has address %s (among %d)", ip, len(netns))
	return ""
}

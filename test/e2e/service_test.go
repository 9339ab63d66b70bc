//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// clusterDNS is the local cluster's CoreDNS Service address.
const clusterDNS = "10.96.0.10:53"

// TestPlainDeploymentAnswersThroughItsService: a Deployment of the echo
// backend runs, CoreDNS resolves its Service's name to the ClusterIP, and
// HTTP requests to that name, through kube-proxy's rules, reach both pods.
func TestPlainDeploymentAnswersThroughItsService(t *testing.T) {
	ns := newNamespace(t, nil)
	labels := map[string]string{"app": "echo"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "echo"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "echo",
					Image: "docker.io/skeinmesh/test-echo:dev",
					Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
						FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
					}}},
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "echo"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	for _, obj := range []client.Object{dep, svc} {
		if err := k8s.Create(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 3*time.Minute, "Deployment available", func() error {
		if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(dep), dep); err != nil {
			return err
		}
		if dep.Status.ReadyReplicas != 2 {
			return fmt.Errorf("%d of 2 replicas ready", dep.Status.ReadyReplicas)
		}
		return nil
	})

	host := fmt.Sprintf("echo.%s.svc.cluster.local", ns)
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, clusterDNS)
	}}
	eventually(t, time.Minute, "CoreDNS resolves "+host, func() error {
		addrs, err := resolver.LookupHost(t.Context(), host)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0] != svc.Spec.ClusterIP {
			return fmt.Errorf("%s resolves to %v, want the ClusterIP %s", host, addrs, svc.Spec.ClusterIP)
		}
		return nil
	})

	httpClient := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext:       (&net.Dialer{Resolver: resolver}).DialContext,
			DisableKeepAlives: true, // a new connection each time, so kube-proxy may pick either pod
		},
	}
	seen := map[string]bool{}
	eventually(t, time.Minute, "both pods answer through the Service", func() error {
		resp, err := httpClient.Get("http://" + host + "/hello")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		var echo struct {
			Pod  string `json:"pod"`
			Path string `json:"path"`
		}
		if err := json.Unmarshal(body, &echo); err != nil || echo.Path != "/hello" || echo.Pod == "" {
			return fmt.Errorf("unexpected answer %s (%v)", body, err)
		}
		seen[echo.Pod] = true
		if len(seen) < 2 {
			return fmt.Errorf("answers from %v so far", seen)
		}
		return nil
	})
}

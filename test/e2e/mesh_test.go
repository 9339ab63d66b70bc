//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// TestMeshedDeploymentsTalkThroughTheirSidecars is issue 6's end to end:
// in a meshed namespace, a client Deployment calls the server Deployment
// `web` by its Service name over HTTP/1.1, h2c and gRPC, and every call goes
// app -> outbound capture -> client proxy -> inbound capture -> server
// proxy -> app, with the config the operator streams. Then, under steady
// load, the server scales 2 -> 4 -> 1 -> 3 without one failed request.
func TestMeshedDeploymentsTalkThroughTheirSidecars(t *testing.T) {
	ns := newNamespace(t, meshed)
	web := meshEchoDeployment(ns, "web", 2)
	clientDep := meshEchoDeployment(ns, "client", 1)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: corev1.ServiceSpec{Selector: web.Spec.Selector.MatchLabels, Ports: []corev1.ServicePort{
			{Name: "http", Port: 8080, TargetPort: intstr.FromString("http")},
			{Name: "grpc", Port: 9090, TargetPort: intstr.FromString("grpc")},
		}},
	}
	msvc := &meshv1alpha1.MeshService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: meshv1alpha1.MeshServiceSpec{Ports: []meshv1alpha1.MeshServicePort{
			{Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP},
			{Port: 9090, Protocol: meshv1alpha1.ProtocolGRPC},
		}},
	}
	for _, obj := range []client.Object{svc, msvc, web, clientDep} {
		if err := k8s.Create(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpMeshState(t, ns)
		}
	})

	servers := readyPods(t, web, 2, 3*time.Minute)
	caller := readyPods(t, clientDep, 1, 3*time.Minute)[0]
	for _, p := range append([]corev1.Pod{caller}, servers...) {
		requireSidecar(t, &p)
	}

	host := fmt.Sprintf("web.%s.svc.cluster.local", ns)
	httpCluster := fmt.Sprintf("outbound|8080||%s", host)
	grpcCluster := fmt.Sprintf("outbound|9090||%s", host)

	// The operator streamed the config: every proxy the MeshService
	// reaches (the client's and both servers') ACKed its generation.
	eventually(t, 2*time.Minute, "MeshService web Programmed with every proxy synced", func() error {
		if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(msvc), msvc); err != nil {
			return err
		}
		c := findCondition(msvc.Status.Conditions, meshv1alpha1.ConditionProgrammed)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != msvc.Generation {
			return fmt.Errorf("Programmed %+v", c)
		}
		p := msvc.Status.Proxies
		if p == nil || p.Total < 3 || p.Synced != p.Total || p.Rejected != 0 {
			return fmt.Errorf("status.proxies %+v, want all of at least 3 synced", p)
		}
		return nil
	})
	t.Logf("MeshService web: Programmed, proxies %s", msvc.Status.Proxies.Summary)

	serverPods := map[string]bool{}
	for _, p := range servers {
		serverPods[p.Name] = true
	}
	before := proxyRequests(t, caller.Status.PodIP)
	const n = 40
	for _, tc := range []struct{ name, cluster string }{
		{"http1", httpCluster}, {"h2c", httpCluster}, {"grpc", grpcCluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"call", "-n", strconv.Itoa(n)}
			if tc.name == "grpc" {
				args = append(args, "-grpc", host+":9090")
			} else {
				args = append(args, "-url", "http://"+host+":8080/anything", "-proto", tc.name)
			}
			var sum echoSummary
			// The first calls may still race the client proxy's config
			// (none of its listeners ready is not possible: the pod is
			// Ready), so retry the whole batch a few times.
			eventually(t, time.Minute, tc.name+" calls to web by name", func() error {
				out, err := execEcho(t, ns, caller.Name, args...)
				if jerr := json.Unmarshal(out, &sum); jerr != nil {
					return fmt.Errorf("echo call: %v: %s (%v)", err, out, jerr)
				}
				if sum.OK != n {
					t.Logf("%s: %d of %d ok, retrying: statuses %v\n%s", tc.name, sum.OK, n, sum.Statuses, failureLines(sum.Failures, 5))
					return fmt.Errorf("%d of %d ok: statuses %v, first failures %s", sum.OK, n, sum.Statuses, failureLines(sum.Failures, 5))
				}
				return nil
			})
			t.Logf("%s: %d ok, answered by %v, callers seen by the server %v, server protocols %v",
				tc.name, sum.OK, sum.Pods, sum.Callers, sum.ServerProtos)
			// Through the server's proxy: the app sees its own pod's proxy
			// as the caller, a loopback address, never the client pod.
			// The capture passthrough connects from 127.0.0.6 (as Istio
			// does); the control plane's inbound|<port>|| clusters go to
			// 127.0.0.1 (internal/xds/translate), so the app sees that.
			for ip, count := range sum.Callers {
				if ip != "127.0.0.6" && ip != "127.0.0.1" {
					t.Errorf("the server saw %d calls from %s, want only its inbound proxy (127.0.0.6 or 127.0.0.1); all callers %v", count, ip, sum.Callers)
				}
			}
			if sum.Callers["127.0.0.6"] != n {
				t.Logf("note: the server saw callers %v, not the passthrough's 127.0.0.6: inbound clusters connect to 127.0.0.1", sum.Callers)
			}
			// Balanced per request by the client's proxy over one connection.
			for pod := range sum.Pods {
				if !serverPods[pod] {
					t.Errorf("answered by %q, not a pod of web", pod)
				}
			}
			if len(sum.Pods) != len(serverPods) {
				t.Errorf("answered by %v, want both pods of web", sum.Pods)
			}
		})
	}

	// Through the client's proxy: its outbound clusters counted them.
	after := proxyRequests(t, caller.Status.PodIP)
	for cluster, want := range map[string]float64{httpCluster: 2 * n, grpcCluster: n} {
		if got := after[cluster] - before[cluster]; got < want {
			t.Errorf("the client proxy's %s counted %v requests answered 2xx, want at least %v", cluster, got, want)
		} else {
			t.Logf("client proxy: %s: %v requests 2xx", cluster, got)
		}
	}
	var inbound float64
	for _, p := range servers {
		inbound += proxyRequests(t, p.Status.PodIP)["inbound|8080||"]
	}
	if inbound < 2*n {
		t.Errorf("the server proxies' inbound|8080|| counted %v requests, want at least %d", inbound, 2*n)
	}

	if t.Failed() {
		return
	}
	// Scaling under load. The echo app stops listening as soon as it gets
	// SIGTERM and has no preStop hook, as many apps: until the client's
	// proxy has the EndpointSlice change (about 100-200 ms here), a request
	// may still be sent to a pod whose app is gone, and only a retry on
	// another endpoint (Istio retries connect failures and 503s by
	// default) keeps it from failing. Failures are logged as they happen
	// with their x-skein-reason, and the client proxy's counters say which
	// proxy made them up.
	t.Run("scaling under load", func(t *testing.T) {
		httpLoad := startLoad(t, ns, caller.Name, "http1", "-url", "http://"+host+":8080/anything", "-rps", "50")
		grpcLoad := startLoad(t, ns, caller.Name, "grpc", "-grpc", host+":9090", "-rps", "20")
		time.Sleep(5 * time.Second)
		for _, replicas := range []int32{4, 1, 3} {
			scaleTo(t, web, replicas)
			time.Sleep(5 * time.Second)
		}
		failed := false
		defer func() {
			if failed {
				// Which proxy made the failures up: the client's connect
				// failures to web's endpoints, and its 5xx by cluster (a
				// server proxy's local reply is a 5xx the client forwards).
				t.Logf("client proxy: connections to web that failed to open %v; requests answered 5xx %v",
					proxyCounter(t, caller.Status.PodIP, "skein_proxy_upstream_cx_connect_failures_total", host),
					proxyCounter(t, caller.Status.PodIP, "skein_proxy_requests_total", `code_class="5xx"`))
			}
		}()
		for _, l := range []*loadRun{httpLoad, grpcLoad} {
			sum := l.stop(t)
			t.Logf("load %s: %d requests, %d ok, %d failed, statuses %v, answered by %v", l.name, sum.Requests, sum.OK, sum.Failed, sum.Statuses, sum.Pods)
			if sum.Failed != 0 {
				failed = true
				t.Errorf("load %s: %d of %d requests failed while web scaled 2 -> 4 -> 1 -> 3:\n%s", l.name, sum.Failed, sum.Requests, failureLines(sum.Failures, 50))
			}
			if sum.Requests == 0 || len(sum.Pods) < 4 {
				t.Errorf("load %s: %d requests answered by %v, want answers from at least 4 pods", l.name, sum.Requests, sum.Pods)
			}
		}
	})
}

// meshEchoDeployment is the echo image with its pod's name in its replies,
// its HTTP and gRPC ports named, and an HTTP readiness probe.
func meshEchoDeployment(ns, name string, replicas int32) *appsv1.Deployment {
	dep := echoDeployment(ns, name, replicas)
	c := &dep.Spec.Template.Spec.Containers[0]
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "grpc", ContainerPort: 9090}}
	c.Env = []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
	}
	return dep
}

// requireSidecar fails unless the pod runs skein-proxy as a Ready native
// sidecar next to its Ready app (kubectl's 2/2).
func requireSidecar(t *testing.T, p *corev1.Pod) {
	t.Helper()
	ready := 0
	for _, s := range p.Status.InitContainerStatuses {
		if s.Name == "skein-proxy" && s.Ready {
			ready++
		}
	}
	for _, s := range p.Status.ContainerStatuses {
		if s.Ready {
			ready++
		}
	}
	if ready != 2 || len(p.Spec.Containers) != 1 {
		t.Fatalf("pod %s: %d of 2 containers Ready (init %v, app %v), want the app and skein-proxy",
			p.Name, ready, containerNames(p.Spec.InitContainers), containerNames(p.Spec.Containers))
	}
}

// echoSummary is what `echo call` and `echo load` report (test/images/echo).
type echoSummary struct {
	Requests     int            `json:"requests"`
	OK           int            `json:"ok"`
	Failed       int            `json:"failed"`
	Pods         map[string]int `json:"pods"`
	Callers      map[string]int `json:"callers"`
	ServerProtos map[string]int `json:"serverProtos"`
	Statuses     map[string]int `json:"statuses"`
	Failures     []echoFailure  `json:"failures"`
}

type echoFailure struct {
	Time     time.Time `json:"time"`
	Duration string    `json:"duration"`
	Status   int       `json:"status"`
	Reason   string    `json:"reason"`
	Error    string    `json:"error"`
}

func (f echoFailure) String() string {
	reason := f.Reason
	if reason == "" {
		reason = "-"
	}
	return fmt.Sprintf("%s status %d x-skein-reason %s after %s: %s", f.Time.Format("15:04:05.000"), f.Status, reason, f.Duration, f.Error)
}

func failureLines(fs []echoFailure, max int) string {
	var b strings.Builder
	for i, f := range fs {
		if i == max {
			fmt.Fprintf(&b, "  ... and %d more\n", len(fs)-max)
			break
		}
		fmt.Fprintf(&b, "  %s\n", f)
	}
	return b.String()
}

// kubectl is a kubectl command against the cluster under test.
func kubectl(ctx context.Context, args ...string) *exec.Cmd {
	bin := os.Getenv("KUBECTL")
	if bin == "" {
		bin = repoFile("bin/k8s/kubectl")
		if _, err := os.Stat(bin); err != nil {
			bin = "kubectl"
		}
	}
	return exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfigPath()}, args...)...)
}

// execEcho runs the echo binary in the pod's app container (the image has
// no shell) and returns its stdout.
func execEcho(t *testing.T, ns, pod string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := kubectl(ctx, append([]string{"exec", "-n", ns, pod, "-c", "echo", "--", "/echo"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && stderr.Len() > 0 {
		err = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, err
}

// loadRun is `echo load` running in a pod through `kubectl exec -i`; it
// stops when its stdin closes.
type loadRun struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}

	mu      sync.Mutex
	summary *echoSummary
	lines   int
	stderr  bytes.Buffer
}

func startLoad(t *testing.T, ns, pod, name string, args ...string) *loadRun {
	t.Helper()
	// -duration bounds the run should the stop never reach the pod.
	args = append([]string{"exec", "-i", "-n", ns, pod, "-c", "echo", "--", "/echo", "load", "-stop-on-eof", "-duration", "10m"}, args...)
	l := &loadRun{name: name, cmd: kubectl(context.Background(), args...), done: make(chan struct{})}
	l.cmd.Stderr = &l.stderr
	var err error
	if l.stdin, err = l.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := l.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.stdin.Close()
		select {
		case <-l.done:
		case <-time.After(30 * time.Second):
			l.cmd.Process.Kill()
		}
	})
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var line struct {
				Failure  *echoFailure    `json:"failure"`
				Progress json.RawMessage `json:"progress"`
				Summary  *echoSummary    `json:"summary"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Logf("load %s: %s", name, sc.Text())
				continue
			}
			switch {
			case line.Failure != nil:
				t.Logf("load %s: failed: %s", name, line.Failure)
			case line.Progress != nil:
				t.Logf("load %s: %s", name, line.Progress)
			case line.Summary != nil:
				l.mu.Lock()
				l.summary = line.Summary
				l.mu.Unlock()
			}
		}
		l.cmd.Wait()
	}()
	return l
}

// stop closes the load's stdin and returns its summary.
func (l *loadRun) stop(t *testing.T) echoSummary {
	t.Helper()
	l.stdin.Close()
	select {
	case <-l.done:
	case <-time.After(time.Minute):
		l.cmd.Process.Kill()
		<-l.done
		t.Fatalf("load %s did not stop within a minute of its stdin closing", l.name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.summary == nil {
		t.Fatalf("load %s ended without a summary (%v): %s", l.name, l.cmd.ProcessState, l.stderr.String())
	}
	return *l.summary
}

// scaleTo sets the Deployment's replicas and waits until exactly that many
// of its pods exist, all Ready: pods going away have gone.
func scaleTo(t *testing.T, dep *appsv1.Deployment, replicas int32) {
	t.Helper()
	start := time.Now()
	scale := &appsv1.Deployment{}
	if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(dep), scale); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(scale.DeepCopy())
	scale.Spec.Replicas = ptr.To(replicas)
	if err := k8s.Patch(t.Context(), scale, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Minute, fmt.Sprintf("%s scaled to %d", dep.Name, replicas), func() error {
		pods := &corev1.PodList{}
		if err := k8s.List(t.Context(), pods, client.InNamespace(dep.Namespace), client.MatchingLabels(dep.Spec.Selector.MatchLabels)); err != nil {
			return err
		}
		ready := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				ready++
			}
		}
		if len(pods.Items) != int(replicas) || ready != int(replicas) {
			return fmt.Errorf("%d pods, %d Ready", len(pods.Items), ready)
		}
		return nil
	})
	t.Logf("%s scaled to %d in %v", dep.Name, replicas, time.Since(start).Round(time.Second))
}

// proxyRequests reads a proxy's Prometheus metrics on the pod's 15090
// (which skein-init leaves uncaptured) and returns its requests answered
// 2xx by cluster.
func proxyRequests(t *testing.T, podIP string) map[string]float64 {
	t.Helper()
	return proxyCounter(t, podIP, "skein_proxy_requests_total", `code_class="2xx"`)
}

// proxyCounter sums a proxy's series of metric whose labels contain
// labels, by cluster.
func proxyCounter(t *testing.T, podIP, metric, labels string) map[string]float64 {
	t.Helper()
	var counts map[string]float64
	eventually(t, 30*time.Second, "metrics of the proxy at "+podIP, func() error {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + podIP + ":15090/stats/prometheus")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		counts = map[string]float64{}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, metric+"{") || !strings.Contains(line, labels) {
				continue
			}
			_, rest, _ := strings.Cut(line, `cluster="`)
			cluster, _, _ := strings.Cut(rest, `"`)
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				return fmt.Errorf("metrics line %q: %v", line, err)
			}
			counts[cluster] += v
		}
		return sc.Err()
	})
	return counts
}

// dumpMeshState logs what helps explain a failure: the pods, the
// MeshService's status, and the proxies' logs' last lines.
func dumpMeshState(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"get", "pods", "-n", ns, "-o", "wide"},
		{"get", "meshservice", "-n", ns, "-o", "yaml"},
		{"logs", "-n", ns, "-l", "app=client", "-c", "skein-proxy", "--tail", "40"},
		{"logs", "-n", ns, "-l", "app=web", "-c", "skein-proxy", "--tail", "20", "--prefix"},
		{"logs", "-n", operatorNamespace, "deploy/skein-operator", "--tail", "40"},
	} {
		out, err := kubectl(ctx, args...).CombinedOutput()
		t.Logf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

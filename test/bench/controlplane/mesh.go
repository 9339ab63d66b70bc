package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
	"github.com/skeinmesh/skein/internal/testenv"
	"github.com/skeinmesh/skein/internal/xds/server"
)

// The ports of every benchmark service: one HTTP, one gRPC.
const (
	httpPort, httpTarget = 80, 8080
	grpcPort, grpcTarget = 9090, 9090
	// initialAttempts is the retries every TrafficPolicy starts with.
	initialAttempts = 2
	// configNamespace is the operator's own namespace.
	configNamespace = "skein-system"
)

// benchMesh is the mesh the benchmark created.
type benchMesh struct {
	client    client.Client
	clientset kubernetes.Interface
	pods      []*benchPod
	// hot is the service every proxy sees whose policy and endpoints the
	// rounds change: svc-0 in bench-0.
	hot service
}

// service names one MeshService (and its Service, EndpointSlice and TrafficPolicy).
type service struct {
	namespace, name string
}

func (s service) host() string       { return s.name + "." + s.namespace + ".svc.cluster.local" }
func (s service) sliceName() string  { return s.name + "-bench" }
func (s service) policyName() string { return s.name + "-retries" }
func (s service) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: s.namespace, Name: name}
}

// benchPod is one meshed pod: an object only, nothing runs it; its proxy is
// a raw ADS client.
type benchPod struct {
	pod    *corev1.Pod
	nodeID string
	token  string
}

// createMesh creates namespaces × services MeshServices over proxies pods,
// with parallel requests in flight, and mints each pod's token.
func createMesh(ctx context.Context, c *testenv.Cluster, cfg config) (*benchMesh, error) {
	rc := *c.Config
	rc.QPS = -1 // no client-side rate limit: the API server's own flow control is the limit
	k, err := client.New(&rc, client.Options{Scheme: c.Scheme})
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(&rc)
	if err != nil {
		return nil, err
	}
	m := &benchMesh{client: k, clientset: cs, hot: service{namespace: nsName(0), name: svcName(0)}}
	podsPerNS := cfg.proxies / cfg.namespaces

	if err := k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: configNamespace}}); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", configNamespace, err)
	}
	err = parallel(ctx, cfg.namespaces, cfg.parallel, func(ctx context.Context, i int) error {
		if err := k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i)}}); err != nil {
			return fmt.Errorf("create namespace %s: %w", nsName(i), err)
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: nsName(i), Name: "app"}}
		if err := k.Create(ctx, sa); err != nil {
			return fmt.Errorf("create service account %s/app: %w", nsName(i), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	progress("created %d namespaces", cfg.namespaces)

	m.pods = make([]*benchPod, cfg.proxies)
	err = parallel(ctx, cfg.proxies, cfg.parallel, func(ctx context.Context, g int) error {
		p, err := createPod(ctx, k, nsName(g/podsPerNS), g%podsPerNS, cfg.services, podIP(g))
		if err != nil {
			return err
		}
		m.pods[g] = &benchPod{pod: p, nodeID: mesh.NodeID(p)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	progress("created %d pods with IPs", cfg.proxies)

	err = parallel(ctx, cfg.namespaces*cfg.services, cfg.parallel, func(ctx context.Context, i int) error {
		ns, j := i/cfg.services, i%cfg.services
		var members []*corev1.Pod
		for k := j; k < podsPerNS; k += cfg.services {
			members = append(members, m.pods[ns*podsPerNS+k].pod)
		}
		return createService(ctx, k, service{namespace: nsName(ns), name: svcName(j)}, members, cfg.grpc)
	})
	if err != nil {
		return nil, err
	}
	progress("created %d Services, EndpointSlices, MeshServices and TrafficPolicies", cfg.namespaces*cfg.services)

	err = parallel(ctx, cfg.proxies, cfg.parallel, func(ctx context.Context, g int) error {
		p := m.pods[g].pod
		tr, err := cs.CoreV1().ServiceAccounts(p.Namespace).CreateToken(ctx, p.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{server.TokenAudience}, BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("mint a token for pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		m.pods[g].token = tr.Status.Token
		return nil
	})
	if err != nil {
		return nil, err
	}
	progress("minted %d pod-bound tokens (audience %q)", cfg.proxies, server.TokenAudience)
	return m, nil
}

func nsName(i int) string  { return fmt.Sprintf("bench-%d", i) }
func svcName(j int) string { return fmt.Sprintf("svc-%d", j) }

// podIP is the g-th pod's IP, in 10.128.0.0/9, away from envtest's
// Service range (10.0.0.0/24).
func podIP(g int) string {
	n := g + 1
	return fmt.Sprintf("10.%d.%d.%d", 128+n>>16, (n>>8)&0xff, n&0xff)
}

// createPod creates the k-th pod of namespace ns, behind service k mod
// services, running and ready with ip.
func createPod(ctx context.Context, c client.Client, ns string, k, services int, ip string) (*corev1.Pod, error) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("pod-%d", k), Labels: map[string]string{"app": svcName(k % services)}},
		Spec:       corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	if err := c.Create(ctx, p); err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", ns, p.Name, err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	if err := c.Status().Update(ctx, p); err != nil {
		return nil, fmt.Errorf("set the IP of pod %s/%s: %w", ns, p.Name, err)
	}
	return p, nil
}

// createService creates s's Service (an HTTP port, and a gRPC port when
// grpc), an EndpointSlice listing members as ready endpoints, the
// MeshService, and a TrafficPolicy with retries.
func createService(ctx context.Context, c client.Client, s service, members []*corev1.Pod, grpc bool) error {
	svcPorts := []corev1.ServicePort{{Name: "http", Port: httpPort, TargetPort: intstr.FromInt32(httpTarget), Protocol: corev1.ProtocolTCP}}
	meshPorts := []meshv1alpha1.MeshServicePort{{Port: httpPort, Name: "http", Protocol: meshv1alpha1.ProtocolHTTP}}
	epPorts := []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](httpTarget), Protocol: ptr.To(corev1.ProtocolTCP)}}
	if grpc {
		svcPorts = append(svcPorts, corev1.ServicePort{Name: "grpc", Port: grpcPort, TargetPort: intstr.FromInt32(grpcTarget), Protocol: corev1.ProtocolTCP})
		meshPorts = append(meshPorts, meshv1alpha1.MeshServicePort{Port: grpcPort, Name: "grpc", Protocol: meshv1alpha1.ProtocolGRPC})
		epPorts = append(epPorts, discoveryv1.EndpointPort{Name: ptr.To("grpc"), Port: ptr.To[int32](grpcTarget), Protocol: ptr.To(corev1.ProtocolTCP)})
	}
	objs := []client.Object{
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: s.name},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": s.name}, Ports: svcPorts},
		},
		endpointSlice(s, members, epPorts),
		&meshv1alpha1.MeshService{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: s.name},
			Spec:       meshv1alpha1.MeshServiceSpec{Ports: meshPorts},
		},
		&meshv1alpha1.TrafficPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: s.policyName()},
			Spec: meshv1alpha1.TrafficPolicySpec{
				TargetRef: meshv1alpha1.PolicyTargetReference{Name: meshv1alpha1.ObjectName(s.name)},
				Retries:   &meshv1alpha1.RetryPolicy{Attempts: ptr.To[int32](initialAttempts)},
			},
		},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("create %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}

func endpointSlice(s service, members []*corev1.Pod, ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	eps := make([]discoveryv1.Endpoint, 0, len(members))
	for _, p := range members {
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  []string{p.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		})
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: s.namespace, Name: s.sliceName(), Labels: map[string]string{discoveryv1.LabelServiceName: s.name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       ports,
	}
}

// setAttempts sets the retry attempts of the hot service's TrafficPolicy.
// It returns when the successful Update call started.
func (m *benchMesh) setAttempts(ctx context.Context, attempts int32) (time.Time, error) {
	tp := &meshv1alpha1.TrafficPolicy{}
	return m.update(ctx, tp, m.hot.key(m.hot.policyName()), func() { tp.Spec.Retries.Attempts = ptr.To(attempts) })
}

// setFirstEndpointReady sets the readiness of the first endpoint of the hot
// service's EndpointSlice. It returns when the successful Update call started.
func (m *benchMesh) setFirstEndpointReady(ctx context.Context, ready bool) (time.Time, error) {
	es := &discoveryv1.EndpointSlice{}
	return m.update(ctx, es, m.hot.key(m.hot.sliceName()), func() {
		es.Endpoints[0].Conditions.Ready = ptr.To(ready)
		es.Endpoints[0].Conditions.Serving = ptr.To(ready)
	})
}

// update reads obj, applies change and writes it, retrying on conflicts
// (the operator writes statuses meanwhile).
func (m *benchMesh) update(ctx context.Context, obj client.Object, key client.ObjectKey, change func()) (time.Time, error) {
	var t0 time.Time
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := m.client.Get(ctx, key, obj); err != nil {
			return err
		}
		change()
		t0 = time.Now()
		return m.client.Update(ctx, obj)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("update %T %s: %w", obj, key, err)
	}
	return t0, nil
}

// parallel calls f for 0..n-1 with at most workers calls at once, and
// returns the first error (the remaining calls are skipped).
func parallel(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// Package controlplane_test runs the operator's reconcilers and its xDS
// control plane together against a real kube-apiserver, with raw ADS
// clients standing in for proxies: what a user sees in a policy's status is
// what the proxies did with it.
package controlplane_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap/zapcore"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/controllers"
	"github.com/skeinmesh/skein/internal/controlplane"
	"github.com/skeinmesh/skein/internal/mesh"
	"github.com/skeinmesh/skein/internal/meshconfig"
	"github.com/skeinmesh/skein/internal/testenv"
	"github.com/skeinmesh/skein/internal/xds/server"
	"github.com/skeinmesh/skein/internal/xds/server/xdstest"
)

var (
	k8sClient client.Client
	clientset *kubernetes.Clientset
	// xdsAddr is where the suite's operator serves xDS.
	xdsAddr string
)

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

// runSuite starts an API server, and the operator as cmd/manager wires it:
// reconcilers, and a control plane that authenticates proxies by TokenReview.
func runSuite(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	c, err := testenv.StartCluster(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = c.Stop() }()
	k8sClient = c.Client
	if clientset, err = kubernetes.NewForConfig(c.Config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	opts := controllers.Options{ConfigNamespace: "skein-system", Settings: meshconfig.NewStore()}
	mgr, err := ctrl.NewManager(c.Config, ctrl.Options{
		Scheme:  c.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   controllers.CacheOptions(opts),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cp := controlplane.New(controlplane.Options{
		Reader:        mgr.GetClient(),
		Settings:      opts.Settings,
		Authenticator: server.NewTokenReviewAuthenticator(mgr.GetClient(), 0),
		Logger:        ctrl.Log.WithName("xds"),
	})
	opts.ControlPlane = &controllers.ControlPlane{Proxies: reporter{cp.Server}, ProxiesChanged: cp.Server.Changes(), MeshChanged: cp.MeshChanged}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := controllers.Setup(ctx, mgr, opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	xdsAddr = lis.Addr().String()
	go func() { _ = cp.ServeListener(ctx, lis) }()
	done := make(chan error)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	return code
}

// reporter is cmd/manager's adapter from the xDS server to the reconcilers.
type reporter struct{ s *server.Server }

func (r reporter) Report(kind, namespace, name string) (controllers.ProxyReport, bool) {
	c := r.s.Status(server.ObjectKey{Kind: kind, Namespace: namespace, Name: name})
	return controllers.ProxyReport{Total: c.Total, Synced: c.Synced, Rejected: c.Rejected, Generation: c.Generation, Message: c.NACKMessage}, true
}

// zapLevel is errors only, unless TEST_VERBOSE_LOGS is set.
func zapLevel() zapcore.Level {
	if os.Getenv("TEST_VERBOSE_LOGS") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// shop is one namespace holding a client pod, a server pod behind the
// catalog Service (meshed, HTTP on 80), and a TrafficPolicy on catalog.
type shop struct {
	ns                string
	client, server    *corev1.Pod
	policy            *meshv1alpha1.TrafficPolicy
	clientID, srvID   string
	clientTok, srvTok string
}

func newShop(t *testing.T) *shop {
	t.Helper()
	s := &shop{}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "shop-"}}
	create(t, ns)
	s.ns = ns.Name
	create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "app"}})
	s.client = pod(t, s.ns, "frontend", map[string]string{"app": "frontend"}, "10.0.0.1")
	s.server = pod(t, s.ns, "catalog-0", map[string]string{"app": "catalog"}, "10.0.0.2")
	create(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "catalog"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "catalog"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	})
	create(t, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: s.ns, Name: "catalog-abc", Labels: map[string]string{discoveryv1.LabelServiceName: "catalog"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: s.ns, Name: s.server.Name, UID: s.server.UID}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](80), Protocol: ptr.To(corev1.ProtocolTCP)}},
	})
	create(t, &meshv1alpha1.MeshService{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "catalog"},
		Spec:       meshv1alpha1.MeshServiceSpec{Ports: []meshv1alpha1.MeshServicePort{{Port: 80, Protocol: meshv1alpha1.ProtocolHTTP}}},
	})
	s.policy = &meshv1alpha1.TrafficPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "catalog-retries"},
		Spec: meshv1alpha1.TrafficPolicySpec{
			TargetRef: meshv1alpha1.PolicyTargetReference{Name: "catalog"},
			Retries:   &meshv1alpha1.RetryPolicy{Attempts: ptr.To[int32](2)},
		},
	}
	create(t, s.policy)
	s.clientID, s.srvID = mesh.NodeID(s.client), mesh.NodeID(s.server)
	s.clientTok, s.srvTok = token(t, s.client), token(t, s.server)
	return s
}

// TestPolicyChangeReachesProxyAndStatus: a proxy authenticated as its pod
// gets its config; the policy it uses reports it synced once it ACKed;
// changing the policy sends a new route version, and the status follows
// the ACK to the new generation.
func TestPolicyChangeReachesProxyAndStatus(t *testing.T) {
	s := newShop(t)
	proxy := connect(t, xdstest.Options{NodeID: s.clientID, Token: s.clientTok})
	waitRoutes(t, proxy, "attempts 2", func(routes map[string]*anypb.Any) bool { return retriesIn(routes) == 2 })
	waitPolicy(t, s, "synced by the client proxy at generation 1", func(tp *meshv1alpha1.TrafficPolicy) error {
		return programmedWith(tp, metav1.ConditionTrue, meshv1alpha1.ReasonProgrammed, 1, "1/1")
	})

	before := proxy.Versions()[resource.RouteType]
	update(t, s.policy, func() { s.policy.Spec.Retries.Attempts = ptr.To[int32](5) })
	waitRoutes(t, proxy, "attempts 5", func(routes map[string]*anypb.Any) bool { return retriesIn(routes) == 5 })
	if after := proxy.Versions()[resource.RouteType]; after == before {
		t.Errorf("route version stayed %q after the policy changed", after)
	}
	waitPolicy(t, s, "synced at generation 2", func(tp *meshv1alpha1.TrafficPolicy) error {
		return programmedWith(tp, metav1.ConditionTrue, meshv1alpha1.ReasonProgrammed, 2, "1/1")
	})
}

// TestNACKReachesStatusAndEvent: a proxy that refuses its routes turns the
// policy's Programmed False with the proxy's own message, and a Warning
// Event tells people.
func TestNACKReachesStatusAndEvent(t *testing.T) {
	s := newShop(t)
	connect(t, xdstest.Options{NodeID: s.clientID, Token: s.clientTok})
	connect(t, xdstest.Options{NodeID: s.srvID, Token: s.srvTok, Reject: func(typeURL, _ string, _ map[string]*anypb.Any) string {
		if typeURL == resource.RouteType {
			return "route catalog: retry_on \"bogus\" is not supported"
		}
		return ""
	}})
	waitPolicy(t, s, "rejected by one of two proxies", func(tp *meshv1alpha1.TrafficPolicy) error {
		if err := programmedWith(tp, metav1.ConditionFalse, controllers.ReasonRejected, 1, "1/2"); err != nil {
			return err
		}
		c := meta.FindStatusCondition(tp.Status.Conditions, meshv1alpha1.ConditionProgrammed)
		if !strings.Contains(c.Message, `retry_on \"bogus\" is not supported`) && !strings.Contains(c.Message, `retry_on "bogus" is not supported`) {
			return fmt.Errorf("message %q lacks the proxy's reason", c.Message)
		}
		if !strings.Contains(c.Message, s.server.Name) {
			return fmt.Errorf("message %q does not name the rejecting proxy", c.Message)
		}
		if tp.Status.Proxies.Rejected != 1 {
			return fmt.Errorf("proxies = %+v, want 1 rejected", tp.Status.Proxies)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "a Warning Event Rejected on the policy", func() error {
		events := &eventsv1.EventList{}
		if err := k8sClient.List(context.Background(), events, client.InNamespace(s.ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == s.policy.Name && e.Type == corev1.EventTypeWarning && e.Reason == controllers.ReasonRejected &&
				strings.Contains(e.Note, "is not supported") {
				return nil
			}
		}
		return fmt.Errorf("no such Event among %d", len(events.Items))
	})
}

// TestStreamForAnotherPodIsRefused: pod A's token does not get pod B's
// config, nor does a stream without a token or with a token for another
// audience get anything.
func TestStreamForAnotherPodIsRefused(t *testing.T) {
	s := newShop(t)
	otherAudience, err := clientset.CoreV1().ServiceAccounts(s.ns).CreateToken(context.Background(), "app", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"not-skein"}, BoundObjectRef: &authenticationv1.BoundObjectReference{
			Kind: "Pod", APIVersion: "v1", Name: s.client.Name, UID: s.client.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		// o is the stream's node and token; want the refusal's code.
		o    xdstest.Options
		want codes.Code
	}{
		{name: "A's token, B's node", o: xdstest.Options{NodeID: s.srvID, Token: s.clientTok}, want: codes.PermissionDenied},
		{name: "no token", o: xdstest.Options{NodeID: s.clientID}, want: codes.Unauthenticated},
		{name: "token for another audience", o: xdstest.Options{NodeID: s.clientID, Token: otherAudience.Status.Token}, want: codes.Unauthenticated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t, tc.o)
			select {
			case <-c.Done():
			case <-time.After(30 * time.Second):
				t.Fatal("the stream was not refused")
			}
			if got := status.Code(c.Err()); got != tc.want {
				t.Fatalf("stream ended with %v, want %v", c.Err(), tc.want)
			}
			for _, typ := range xdstest.AllTypes {
				if n := c.Responses(typ); n != 0 {
					t.Errorf("got %d %s responses before the refusal", n, typ)
				}
			}
		})
	}
}

func connect(t *testing.T, o xdstest.Options) *xdstest.Client {
	t.Helper()
	conn, err := grpc.NewClient(xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := xdstest.Connect(context.Background(), conn, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	return c
}

// waitRoutes waits until the proxy accepted routes for which ok holds.
func waitRoutes(t *testing.T, c *xdstest.Client, what string, ok func(map[string]*anypb.Any) bool) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, "routes with "+what, func() error {
		if err := c.Err(); err != nil {
			return fmt.Errorf("stream ended: %w", err)
		}
		if !ok(c.Resources(resource.RouteType)) {
			return fmt.Errorf("not yet (route version %q)", c.Versions()[resource.RouteType])
		}
		return nil
	})
}

// retriesIn returns num_retries of the first route with a retry policy in
// the route configurations, 0 if none.
func retriesIn(routes map[string]*anypb.Any) uint32 {
	for _, a := range routes {
		rc := &routev3.RouteConfiguration{}
		if err := a.UnmarshalTo(rc); err != nil {
			continue
		}
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				if rp := r.GetRoute().GetRetryPolicy(); rp != nil {
					return rp.GetNumRetries().GetValue()
				}
			}
		}
	}
	return 0
}

// waitPolicy waits until the shop's TrafficPolicy, read from the API server, satisfies check.
func waitPolicy(t *testing.T, s *shop, what string, check func(*meshv1alpha1.TrafficPolicy) error) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "TrafficPolicy "+what, func() error {
		tp := &meshv1alpha1.TrafficPolicy{}
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(s.policy), tp); err != nil {
			return err
		}
		return check(tp)
	})
}

// programmedWith checks the Programmed condition and the proxies summary.
func programmedWith(tp *meshv1alpha1.TrafficPolicy, st metav1.ConditionStatus, reason string, gen int64, summary string) error {
	c := meta.FindStatusCondition(tp.Status.Conditions, meshv1alpha1.ConditionProgrammed)
	if c == nil {
		return fmt.Errorf("no Programmed condition")
	}
	if c.Status != st || c.Reason != reason || c.ObservedGeneration != gen {
		return fmt.Errorf("Programmed is %s/%s at generation %d (%q), want %s/%s at %d", c.Status, c.Reason, c.ObservedGeneration, c.Message, st, reason, gen)
	}
	if tp.Status.Proxies == nil || tp.Status.Proxies.Summary != summary {
		return fmt.Errorf("proxies = %+v, want summary %s", tp.Status.Proxies, summary)
	}
	return nil
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8sClient.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// update applies change to obj and writes it, retrying on conflicts.
func update(t *testing.T, obj client.Object, change func()) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "update "+obj.GetName(), func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		return k8sClient.Update(context.Background(), obj)
	})
}

// pod creates a pod (an object only: nothing runs it) with an IP in its status.
func pod(t *testing.T, ns, name string, labels map[string]string, ip string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	create(t, p)
	p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	if err := k8sClient.Status().Update(context.Background(), p); err != nil {
		t.Fatalf("set the IP of pod %s: %v", name, err)
	}
	return p
}

// token mints pod's projected service-account token for audience skein.
func token(t *testing.T, p *corev1.Pod) string {
	t.Helper()
	tr, err := clientset.CoreV1().ServiceAccounts(p.Namespace).CreateToken(context.Background(), p.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{server.TokenAudience}, BoundObjectRef: &authenticationv1.BoundObjectReference{
			Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("mint a token for pod %s: %v", p.Name, err)
	}
	return tr.Status.Token
}

package server

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/skeinmesh/skein/internal/testenv"
	"github.com/skeinmesh/skein/internal/xds/server/xdstest"
)

// Streams authenticate with pod-bound tokens that the real API server mints
// (TokenRequest) and reviews (TokenReview).
func TestTokenAuthentication(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an API server")
	}
	cluster, err := testenv.StartCluster(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	ctx := testCtx(t)
	cs, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}

	const ns = "shop"
	mustCreate(ctx, t, cluster.Client, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	mustCreate(ctx, t, cluster.Client, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}})
	podA := newPod(ns, "web-a")
	podB := newPod(ns, "web-b")
	mustCreate(ctx, t, cluster.Client, podA)
	mustCreate(ctx, t, cluster.Client, podB)

	token := func(pod *corev1.Pod, audience string) string {
		t.Helper()
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "web", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
			Audiences:         []string{audience},
			ExpirationSeconds: ptr.To[int64](3600),
			BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("TokenRequest for pod %s: %v", pod.Name, err)
		}
		return tr.Status.Token
	}
	tokenA := token(podA, TokenAudience)
	tokenAOtherAudience := token(podA, "vault")

	// reviews counts the TokenReviews the authenticator sends the API server.
	var reviews atomic.Int64
	direct, err := client.NewWithWatch(cluster.Config, client.Options{Scheme: cluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	reviewing := interceptor.NewClient(direct, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*authnv1.TokenReview); ok {
				reviews.Add(1)
			}
			return c.Create(ctx, obj, opts...)
		},
	})
	gen := newTestGenerator()
	s := startServer(t, Options{Generate: gen.Generate, Authenticator: NewTokenReviewAuthenticator(reviewing, time.Minute)})

	nodeA := "sidecar~10.0.0.1~web-a.shop~shop.svc.cluster.local"
	nodeB := "sidecar~10.0.0.2~web-b.shop~shop.svc.cluster.local"

	// refused connects with o and checks that the stream ends with code and
	// no resources, and that the refusal is counted under reason.
	refused := func(t *testing.T, o xdstest.Options, code codes.Code, reason string, inMessage ...string) {
		t.Helper()
		before := testutil.ToFloat64(s.metrics.rejectedStreams.WithLabelValues(reason))
		c, err := xdstest.Connect(ctx, s.conn, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		<-c.Done()
		if got := status.Code(c.Err()); got != code {
			t.Fatalf("stream ended with %v, want %v", c.Err(), code)
		}
		for _, typ := range xdstest.AllTypes {
			if n := c.Responses(typ); n != 0 {
				t.Errorf("refused stream got %d %s responses", n, shortType(typ))
			}
		}
		for _, want := range inMessage {
			if msg := status.Convert(c.Err()).Message(); !strings.Contains(msg, want) {
				t.Errorf("message %q does not contain %q", msg, want)
			}
		}
		if after := testutil.ToFloat64(s.metrics.rejectedStreams.WithLabelValues(reason)); after != before+1 {
			t.Errorf("rejected streams (%s) went %v -> %v, want +1", reason, before, after)
		}
	}

	for _, delta := range []bool{false, true} {
		mode := map[bool]string{false: "sotw", true: "delta"}[delta]
		t.Run(mode+"/own pod's token gets config", func(t *testing.T) {
			c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: nodeA, Token: tokenA, Delta: delta})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.WaitAll(ctx); err != nil {
				t.Fatal(err)
			}
			if _, ok := c.Resources(xdstest.AllTypes[0])["backend"]; !ok {
				t.Error("no backend cluster")
			}
		})
		t.Run(mode+"/another pod's node id is denied", func(t *testing.T) {
			refused(t, xdstest.Options{NodeID: nodeB, Token: tokenA, Delta: delta}, codes.PermissionDenied, reasonPermissionDenied, "shop/web-b", "shop/web-a")
		})
		t.Run(mode+"/no token is unauthenticated", func(t *testing.T) {
			refused(t, xdstest.Options{NodeID: nodeA, Delta: delta}, codes.Unauthenticated, reasonUnauthenticated)
		})
		t.Run(mode+"/token for another audience is unauthenticated", func(t *testing.T) {
			refused(t, xdstest.Options{NodeID: nodeA, Token: tokenAOtherAudience, Delta: delta}, codes.Unauthenticated, reasonUnauthenticated)
		})
		t.Run(mode+"/garbage token is unauthenticated", func(t *testing.T) {
			refused(t, xdstest.Options{NodeID: nodeA, Token: "not-a-token", Delta: delta}, codes.Unauthenticated, reasonUnauthenticated)
		})
	}
	t.Run("proxyless client in the token's namespace gets config", func(t *testing.T) {
		c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: "proxyless~10.0.0.1~client.shop~shop.svc.cluster.local", Token: tokenA})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WaitAll(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("proxyless client in another namespace is denied", func(t *testing.T) {
		refused(t, xdstest.Options{NodeID: "proxyless~10.0.0.1~client.bank~bank.svc.cluster.local", Token: tokenA}, codes.PermissionDenied, reasonPermissionDenied, `"bank"`, "shop/web")
	})
	t.Run("token bound to no pod cannot be a sidecar", func(t *testing.T) {
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "web", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
			Audiences: []string{TokenAudience},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		refused(t, xdstest.Options{NodeID: nodeA, Token: tr.Status.Token}, codes.PermissionDenied, reasonPermissionDenied, "bound to no pod")
	})
	t.Run("a cached review expires after its TTL", func(t *testing.T) {
		a := NewTokenReviewAuthenticator(reviewing, time.Minute)
		now := time.Now()
		a.now = func() time.Time { return now }
		before := reviews.Load()
		for range 2 {
			id, err := a.Authenticate(ctx, tokenA)
			if err != nil {
				t.Fatal(err)
			}
			if want := (Identity{Namespace: ns, ServiceAccount: "web", Pod: "web-a"}); id != want {
				t.Fatalf("identity %+v, want %+v", id, want)
			}
		}
		if n := reviews.Load() - before; n != 1 {
			t.Fatalf("%d reviews for two authentications within the TTL, want 1", n)
		}
		now = now.Add(time.Minute + time.Second)
		if _, err := a.Authenticate(ctx, tokenA); err != nil {
			t.Fatal(err)
		}
		if n := reviews.Load() - before; n != 2 {
			t.Fatalf("%d reviews after the TTL passed, want 2", n)
		}
	})
	t.Run("a reviewed token is cached", func(t *testing.T) {
		before := reviews.Load()
		for range 3 {
			c, err := xdstest.Connect(ctx, s.conn, xdstest.Options{NodeID: nodeA, Token: tokenA})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.WaitAll(ctx); err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
		if n := reviews.Load() - before; n != 0 {
			t.Errorf("%d TokenReviews for a token reviewed before, want 0 (cached)", n)
		}
		if reviews.Load() == 0 {
			t.Error("no TokenReview was ever sent")
		}
	})
}

func newPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			Containers:         []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}},
		},
	}
}

func mustCreate(ctx context.Context, t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(ctx, obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

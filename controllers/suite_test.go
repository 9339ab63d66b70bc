package controllers

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/skeinmesh/skein/internal/testenv"
)

// The suite runs the reconcilers in a manager against a real kube-apiserver
// and etcd; k8sClient reads straight from the API server, not from a cache.
var (
	k8sClient client.Client
	// configNamespace holds the mesh-wide ConfigMap.
	configNamespace = "skein-system"
	// webhookConfiguration is the injection webhook configuration the
	// suite's operator keeps in line with webhookFailurePolicy.
	webhookConfiguration = "skein-injector-test"
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	c, err := testenv.StartCluster(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = c.Stop() }()
	cfg, scheme := c.Config, c.Scheme
	k8sClient = c.Client
	opts := Options{ConfigNamespace: configNamespace, WebhookConfiguration: webhookConfiguration}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   CacheOptions(opts),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Setup(ctx, mgr, opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
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

// zapLevel is the suite's log level: errors only, unless TEST_VERBOSE_LOGS is set.
func zapLevel() zapcore.Level {
	if os.Getenv("TEST_VERBOSE_LOGS") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// eventually retries check until it returns nil, failing the test with its
// last error after a timeout generous enough for a loaded 2-core machine.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, what, check)
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8sClient.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func remove(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8sClient.Delete(context.Background(), obj); err != nil {
		t.Fatalf("delete %T %s: %v", obj, obj.GetName(), err)
	}
}

// hasCondition returns nil when conds has the condition typ with status,
// reason and observedGeneration as given.
func hasCondition(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string, generation int64) error {
	for _, c := range conds {
		if c.Type != typ {
			continue
		}
		if c.Status != status || c.Reason != reason || c.ObservedGeneration != generation {
			return fmt.Errorf("%s is %s/%s at generation %d (%q), want %s/%s at generation %d",
				typ, c.Status, c.Reason, c.ObservedGeneration, c.Message, status, reason, generation)
		}
		return nil
	}
	return fmt.Errorf("no %s condition in %v", typ, conds)
}

// get reads obj afresh from the API server.
func get(obj client.Object) error {
	return k8sClient.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
}

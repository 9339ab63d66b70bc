package webhook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/skeinmesh/skein/controllers"
	"github.com/skeinmesh/skein/internal/inject"
	"github.com/skeinmesh/skein/internal/meshconfig"
	"github.com/skeinmesh/skein/internal/testenv"
)

// The suite installs config/webhook/manifests.yaml into a real kube-apiserver,
// pointed (by envtest, with serving certificates it makes) at a manager's
// webhook server on 127.0.0.1 that serves Register's handler. Pods are
// created through the API server, so they go through the real admission
// chain. k8sClient reads straight from the API server.
var (
	k8sClient client.Client
	// namespaces is the manager's cache, which the handler reads.
	namespaces client.Reader
	// settings are the mesh-wide settings the handler reads.
	settings = meshconfig.NewStore()
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	env, err := testenv.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.WebhookInstallOptions = envtest.WebhookInstallOptions{
		Paths:            []string{filepath.Join(testenv.RepoRoot(), "config", "webhook", "manifests.yaml")},
		LocalServingHost: "127.0.0.1",
	}
	c, err := testenv.StartCluster(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = c.Stop() }()
	cfg, scheme := c.Config, c.Scheme
	k8sClient = c.Client
	wo := env.WebhookInstallOptions
	// The operator's reconcilers run too, so that a pod admitted without
	// the webhook is seen reported as unmeshed, as in the operator.
	opts := controllers.Options{ConfigNamespace: "skein-system", Settings: settings}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   controllers.CacheOptions(opts),
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host: wo.LocalServingHost, Port: wo.LocalServingPort, CertDir: wo.LocalServingCertDir,
		}),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	namespaces = mgr.GetCache()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Register(ctx, mgr, settings); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := controllers.Setup(ctx, mgr, opts); err != nil {
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

// newNamespace creates a namespace for one test with the given annotations,
// and waits until the manager's cache, which the handler reads, has it.
func newNamespace(t *testing.T, annotations map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-", Annotations: annotations}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	eventually(t, "namespace "+ns.Name+" in the manager's cache", func() error {
		return namespaces.Get(context.Background(), client.ObjectKeyFromObject(ns), &corev1.Namespace{})
	})
	return ns.Name
}

// enabledNamespace is a namespace annotated skein.io/inject: enabled.
func enabledNamespace(t *testing.T) string {
	t.Helper()
	return newNamespace(t, map[string]string{inject.AnnotationInject: inject.InjectEnabled})
}

// eventually retries check until it returns nil, failing the test with its
// last error after a timeout generous enough for a loaded 2-core machine.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, what, check)
}

//go:build e2e

// Package e2e holds Skein's end-to-end tests. They run black-box against a
// real cluster with Skein deployed: `make e2e` brings up the project's own
// single-node cluster, imports the images and deploys Skein first.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/testenv"
)

// k8s talks to the cluster under test.
var k8s client.Client

// operatorNamespace is where `make deploy` installs Skein.
const operatorNamespace = "skein-system"

func TestMain(m *testing.M) {
	path := kubeconfigPath()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: no cluster: %v (run `make e2e`, which brings up the local cluster)\n", err)
		os.Exit(1)
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(meshv1alpha1.AddToScheme(scheme))
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: client for %s: %v\n", path, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// kubeconfigPath is $KUBECONFIG, else the local cluster's admin kubeconfig.
func kubeconfigPath() string {
	if p := os.Getenv("KUBECONFIG"); p != "" {
		return p
	}
	state := os.Getenv("CLUSTER_STATE")
	if state == "" {
		state = "/var/lib/skein-cluster"
	}
	return filepath.Join(state, "admin.kubeconfig")
}

// repoFile is the absolute path of a file in the repository.
func repoFile(rel string) string {
	return filepath.Join(testenv.RepoRoot(), rel)
}

// newNamespace creates a namespace for one test, deleted when it ends.
func newNamespace(t *testing.T, annotations map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-", Annotations: annotations}}
	if err := k8s.Create(t.Context(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		if !t.Failed() || os.Getenv("E2E_KEEP_FAILED") == "" {
			_ = k8s.Delete(context.Background(), ns)
		}
	})
	return ns.Name
}

// eventually retries check until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, 500*time.Millisecond, what, check)
}

// Package crd_test checks Skein's CRDs against a real kube-apiserver and etcd:
// that the API server rejects invalid objects with errors that name the field,
// accepts valid ones, applies the defaults, and accepts the samples.
package crd_test

import (
	"fmt"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/testenv"
)

// k8s is a client of the API server that TestMain starts for every test.
var k8s client.Client

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run starts the API server with Skein's CRDs installed, runs the tests and
// stops the API server.
func run(m *testing.M) int {
	env, err := testenv.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg, err := testenv.Start(env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "start the API server with Skein's CRDs: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop the API server: %v\n", err)
		}
	}()

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, meshv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintf(os.Stderr, "create a client: %v\n", err)
		return 1
	}
	return m.Run()
}

// newNamespace creates a namespace with a name starting with prefix and
// returns its name. Nothing deletes namespaces here, and nothing needs to:
// the API server and its etcd go away when the tests end.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := k8s.Create(t.Context(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

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
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	c, err := testenv.StartCluster(nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "start the API server with Skein's CRDs: %v\n", err)
		return 1
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop the API server: %v\n", err)
		}
	}()
	k8s = c.Client
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

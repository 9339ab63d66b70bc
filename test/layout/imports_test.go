// Package layout checks the dependency rules of ARCHITECTURE.md that the
// compiler does not: which parts of the tree may import which.
package layout

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/skeinmesh/skein/internal/testenv"
)

const module = "github.com/skeinmesh/skein"

// TestDataPlaneImportsNoOperatorCode: the proxy's and skein-init's only
// contract with the control plane is xDS and flags, so nothing they build
// from may import the operator's packages, client-go or controller-runtime.
func TestDataPlaneImportsNoOperatorCode(t *testing.T) {
	forbidden := []string{
		module + "/api/", module + "/controllers", module + "/webhook", module + "/internal/",
		"k8s.io/client-go", "sigs.k8s.io/controller-runtime",
	}
	for _, pkg := range []string{"./sidecar/...", "./cmd/init", "./cmd/proxy"} {
		for _, dep := range deps(t, pkg) {
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}

// TestAPIImportsNoImplementation: api/ is the innermost layer.
func TestAPIImportsNoImplementation(t *testing.T) {
	for _, dep := range deps(t, "./api/...") {
		if strings.HasPrefix(dep, module+"/") && !strings.HasPrefix(dep, module+"/api/") {
			t.Errorf("api depends on %s", dep)
		}
	}
}

// deps lists every package that pkg is built from.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg)
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// Package testenv starts a real kube-apiserver and etcd, built from source by
// `make envtest-assets`, with Skein's CRDs installed, for tests that need an
// API server.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"k8s.io/client-go/rest"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RepoRoot is the absolute path of the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// AssetsDir is where kube-apiserver and etcd are: $KUBEBUILDER_ASSETS when
// set, else bin/k8s in the repository.
func AssetsDir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join(RepoRoot(), "bin", "k8s")
}

// New returns an envtest environment that installs Skein's CRDs from
// config/crd/bases into a real API server. Start it in TestMain.
func New() (*envtest.Environment, error) {
	dir := AssetsDir()
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run `make envtest-assets` to build it from source", bin, dir)
		}
	}
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
	}, nil
}

// Start starts env. When starting fails halfway, for example because the
// API server refuses a CRD, it stops what did start, so that no
// kube-apiserver or etcd outlives the failure.
func Start(env *envtest.Environment) (*rest.Config, error) {
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return cfg, nil
}

package testenv

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// Cluster is a running API server with Skein's CRDs and a client of it
// that reads straight from the server, not from a cache.
type Cluster struct {
	Env    *envtest.Environment
	Config *rest.Config
	// Scheme knows Kubernetes' kinds and Skein's.
	Scheme *runtime.Scheme
	Client client.Client
}

// StartCluster starts env, or the environment New returns when env is nil,
// and makes its client. Stop it when the tests are done.
func StartCluster(env *envtest.Environment) (*Cluster, error) {
	if env == nil {
		var err error
		if env, err = New(); err != nil {
			return nil, err
		}
	}
	cfg, err := Start(env)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Env: env, Config: cfg, Scheme: runtime.NewScheme()}
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, meshv1alpha1.AddToScheme} {
		if err := add(c.Scheme); err != nil {
			_ = env.Stop()
			return nil, err
		}
	}
	if c.Client, err = client.New(cfg, client.Options{Scheme: c.Scheme}); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return c, nil
}

// Stop stops the API server and its etcd.
func (c *Cluster) Stop() error { return c.Env.Stop() }

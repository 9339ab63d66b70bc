// Command localapi runs a local Kubernetes control plane for `make run` and
// `make demo`: kube-apiserver and etcd from bin/k8s, started through
// controller-runtime's envtest, with Skein's CRDs installed. It serves on
// 127.0.0.1 only, writes an admin kubeconfig, and runs until SIGINT or
// SIGTERM, then stops the control plane and deletes its data.
//
// It has no kubelet, controller manager or scheduler: objects are stored and
// watched, but pods stay Pending.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/skeinmesh/skein/internal/testenv"
)

// loopback is the only address the control plane listens on.
const loopback = "127.0.0.1"

func main() {
	assets := flag.String("assets", defaultAssets(), "directory holding the kube-apiserver and etcd binaries")
	crds := flag.String("crds", filepath.Join("config", "crd", "bases"), "directory of CRD manifests to install")
	// Not --kubeconfig: controller-runtime registers that flag for reading one.
	kubeconfig := flag.String("kubeconfig-out", filepath.Join(".local", "kubeconfig"), "file to write the admin kubeconfig to")
	flag.Parse()

	log := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil))
	ctrllog.SetLogger(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *assets, *crds, *kubeconfig); err != nil {
		log.Error(err, "local API server failed")
		os.Exit(1)
	}
}

// defaultAssets is $KUBEBUILDER_ASSETS when set, else bin/k8s.
func defaultAssets() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join("bin", "k8s")
}

// run starts the control plane, writes the kubeconfig, and blocks until ctx
// is done. The control plane is stopped and the kubeconfig removed on return.
func run(ctx context.Context, log logr.Logger, assets, crds, kubeconfig string) (err error) {
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return fmt.Errorf("%s not found in %s (run `make envtest-assets`): %w", bin, assets, err)
		}
	}
	env, err := newEnvironment(assets, crds)
	if err != nil {
		return err
	}

	log.Info("starting kube-apiserver and etcd", "assets", assets, "crds", crds)
	// Stop even when Start fails: it can fail after the processes are up,
	// for example while installing CRDs.
	defer func() {
		_ = os.Remove(kubeconfig)
		if stopErr := env.Stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("stop control plane: %w", stopErr)
		}
	}()
	if _, err := testenv.Start(env); err != nil {
		return fmt.Errorf("start control plane from %s: %w", assets, err)
	}

	if err := writeKubeconfig(kubeconfig, env.KubeConfig); err != nil {
		return err
	}
	log.Info("local API server ready", "server", env.Config.Host, "kubeconfig", kubeconfig)
	fmt.Print(string(env.KubeConfig))

	<-ctx.Done()
	log.Info("stopping local API server")
	return nil
}

// newEnvironment configures envtest to bind etcd and kube-apiserver to
// loopback ports, so nothing listens on other interfaces.
func newEnvironment(assets, crds string) (*envtest.Environment, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcd := &envtest.Etcd{URL: &url.URL{Scheme: "http", Host: net.JoinHostPort(loopback, ports[0])}}
	etcd.Configure().Set("listen-peer-urls", "http://"+net.JoinHostPort(loopback, ports[1]))
	apiServer := &envtest.APIServer{}
	apiServer.SecureServing.Address = loopback
	apiServer.SecureServing.Port = ports[2]

	return &envtest.Environment{
		ControlPlane:          envtest.ControlPlane{APIServer: apiServer, Etcd: etcd},
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{crds},
		ErrorIfCRDPathMissing: true,
	}, nil
}

// freePorts returns n distinct ports that are free on loopback right now.
func freePorts(n int) ([]string, error) {
	ports := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", loopback, err)
		}
		// Keep each listener open until all are chosen, so the ports differ.
		defer l.Close()
		ports = append(ports, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	return ports, nil
}

// writeKubeconfig writes data to path through a rename, so a reader never
// sees a half-written file. It holds admin credentials, hence mode 0600.
func writeKubeconfig(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

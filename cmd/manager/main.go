// Command manager is skein-operator: the reconcilers of the mesh's CRDs and
// the mesh-wide settings, and the sidecar-injection webhook.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/controllers"
	"github.com/skeinmesh/skein/internal/meshconfig"
	"github.com/skeinmesh/skein/webhook"
)

func main() {
	var (
		metricsAddr, probeAddr string
		secureMetrics          bool
		leaderElect            bool
		enableWebhook          bool
		certMode               string
		webhookOpts            crwebhook.Options
		opts                   controllers.Options
		xdsAddr, xdsAuth       string
		pprofAddr              string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to; 0 turns it off.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, to callers authorized by the API server.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one replica reconciles at a time.")
	flag.StringVar(&opts.ConfigNamespace, "config-namespace", envOr("POD_NAMESPACE", "skein-system"), "Namespace of the mesh-wide ConfigMap, the operator's own.")
	flag.StringVar(&opts.ConfigName, "config-name", meshconfig.ConfigMapName, "Name of the mesh-wide ConfigMap.")
	flag.BoolVar(&enableWebhook, "enable-webhook", false, "Serve the sidecar-injection webhook (config/default turns it on).")
	flag.StringVar(&certMode, "webhook-cert-mode", "self-signed", "Where the webhook's serving certificate comes from: "+
		"self-signed (the operator makes it, keeps it in a Secret and sets the webhook configuration's caBundle) "+
		"or files (tls.crt and tls.key in --webhook-cert-dir, from cert-manager for example).")
	flag.IntVar(&webhookOpts.Port, "webhook-port", 9443, "Port the injection webhook listens on, with --enable-webhook.")
	flag.StringVar(&webhookOpts.CertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs",
		"Directory holding the webhook's serving certificate, tls.crt and tls.key.")
	flag.StringVar(&xdsAddr, "xds-bind-address", ":15012", "Address the xDS server (ADS over gRPC) listens on; 0 turns the control plane off.")
	flag.StringVar(&xdsAuth, "xds-authentication", "tokenreview", "How the xDS server identifies proxies: tokenreview (the pod's projected "+
		"service-account token, audience skein, checked with the API server) or none (benchmarks and local development only).")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "0", "Address of Go's pprof endpoints, for profiling (e.g. 127.0.0.1:6060); 0 turns them off.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(meshv1alpha1.AddToScheme(scheme))

	// HTTP/2 stays off: it is open to the Rapid Reset and Stream Cancellation attacks.
	http1Only := func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }
	webhookOpts.TLSOpts = []func(*tls.Config){http1Only}
	metricsOpts := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		TLSOpts:       []func(*tls.Config){http1Only},
	}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	restConfig := ctrl.GetConfigOrDie()
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "skein-operator.skein.io",
		Cache:                  controllers.CacheOptions(opts),
		WebhookServer:          crwebhook.NewServer(webhookOpts),
		PprofBindAddress:       pprofAddr,
	})
	if err != nil {
		log.Error(err, "Unable to create the manager")
		os.Exit(1)
	}
	ctx := ctrl.SetupSignalHandler()
	// The reconciler of the mesh-wide ConfigMap fills the store; the webhook reads it.
	opts.Settings = meshconfig.NewStore()
	opts.VerifyWebhookBeforeRestart = enableWebhook
	if enableWebhook {
		opts.WebhookConfiguration = webhook.ConfigurationName
	}
	if xdsAddr != "0" {
		cp, err := controlPlane(mgr, opts.Settings, xdsAuth)
		if err != nil {
			log.Error(err, "Unable to set up the control plane")
			os.Exit(1)
		}
		opts.ControlPlane = &controllers.ControlPlane{Proxies: reporter{cp.Server}, ProxiesChanged: cp.Server.Changes(), MeshChanged: cp.MeshChanged,
			Serve: func(ctx context.Context) error { return cp.Serve(ctx, xdsAddr) }}
	}
	if err := controllers.Setup(ctx, mgr, opts); err != nil {
		log.Error(err, "Unable to set up the reconcilers")
		os.Exit(1)
	}
	utilruntime.Must(mgr.AddHealthzCheck("healthz", healthz.Ping))
	utilruntime.Must(mgr.AddReadyzCheck("readyz", healthz.Ping))
	if enableWebhook {
		switch certMode {
		case "self-signed":
			if err := webhook.SetupSelfSignedCertificate(ctx, mgr, restConfig, opts.ConfigNamespace, webhookOpts.CertDir); err != nil {
				log.Error(err, "Unable to set up the webhook's certificate")
				os.Exit(1)
			}
		case "files":
		default:
			log.Error(fmt.Errorf("--webhook-cert-mode=%q: want self-signed or files", certMode), "Bad flag")
			os.Exit(1)
		}
		if err := webhook.Register(ctx, mgr, opts.Settings); err != nil {
			log.Error(err, "Unable to set up the injection webhook")
			os.Exit(1)
		}
		utilruntime.Must(mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()))
	}

	log.Info("Starting skein-operator", "configMap", opts.ConfigNamespace+"/"+opts.ConfigName, "webhook", enableWebhook, "xds", xdsAddr)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "The manager stopped with an error")
		os.Exit(1)
	}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

package webhook

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skeinmesh/skein/internal/webhookcert"
)

// Names of the webhook's Service, configuration and certificate Secret, as
// config/webhook writes them.
const (
	ServiceName       = "skein-webhook-service"
	ConfigurationName = "skein-injector"
	CertSecretName    = "skein-webhook-certs"
)

// +kubebuilder:rbac:groups="",namespace=skein-system,resources=secrets,verbs=get;create;update
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,verbs=get;patch

// SetupSelfSignedCertificate is the operator's self-signed certificate mode:
// before the manager starts, it makes sure the webhook's serving certificate
// exists (in a Secret of namespace, shared by every replica), is in certDir
// and is trusted by the webhook configuration; then it checks again every
// few minutes, renewing it when due and restoring a caBundle that an apply
// overwrote. It reads Secrets with a client of its own, so that the
// manager's cache does not hold the cluster's Secrets.
func SetupSelfSignedCertificate(ctx context.Context, mgr ctrl.Manager, cfg *rest.Config, namespace, certDir string) error {
	c, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	o := webhookcert.Options{
		Namespace: namespace, SecretName: CertSecretName, ServiceName: ServiceName,
		WebhookConfigurations: []string{ConfigurationName}, CertDir: certDir,
	}
	if err := webhookcert.Ensure(ctx, c, o, time.Now()); err != nil {
		return fmt.Errorf("self-signed webhook certificate: %w", err)
	}
	log := ctrl.Log.WithName("webhook-certificate")
	return mgr.Add(&webhookcert.Keeper{
		Client: c, Options: o, Interval: 5 * time.Minute,
		OnError: func(err error) { log.Error(err, "Keeping the webhook certificate") },
	})
}

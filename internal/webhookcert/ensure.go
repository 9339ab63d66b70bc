package webhookcert

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options says which certificate to keep and where.
type Options struct {
	// Namespace is the operator's namespace, holding the Secret and the Service.
	Namespace string
	// SecretName is the Secret that holds the bundle, shared by every replica.
	SecretName string
	// ServiceName is the webhook's Service; the certificate is for its DNS names.
	ServiceName string
	// WebhookConfigurations are the MutatingWebhookConfigurations whose
	// caBundle is set; one that does not exist yet is skipped.
	WebhookConfigurations []string
	// CertDir is where the webhook server reads tls.crt and tls.key.
	CertDir string
}

// Ensure makes the certificate right once: it reads the Secret, mints or
// renews the bundle when it is missing, invalid or due, writes it back (a
// replica that loses the race to create or update the Secret takes the
// winner's), writes the files to CertDir when they differ, and sets the CA
// as caBundle of every webhook of the configurations. It is safe to call
// again at any time.
func Ensure(ctx context.Context, c client.Client, o Options, now time.Time) error {
	names := DNSNames(o.ServiceName, o.Namespace)
	b, err := ensureSecret(ctx, c, o, names, now)
	if err != nil {
		return err
	}
	if err := writeFiles(o.CertDir, b); err != nil {
		return err
	}
	for _, name := range o.WebhookConfigurations {
		if err := setCABundle(ctx, c, name, b.CACert); err != nil {
			return err
		}
	}
	return nil
}

func ensureSecret(ctx context.Context, c client.Client, o Options, names []string, now time.Time) (Bundle, error) {
	key := types.NamespacedName{Namespace: o.Namespace, Name: o.SecretName}
	secret := &corev1.Secret{}
	err := c.Get(ctx, key, secret)
	switch {
	case apierrors.IsNotFound(err):
		b, err := NewBundle(names, now)
		if err != nil {
			return Bundle{}, err
		}
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.SecretName,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "skein-operator"}},
			Type: corev1.SecretTypeTLS,
			Data: b.Data(),
		}
		if err := c.Create(ctx, secret); apierrors.IsAlreadyExists(err) {
			return ensureSecret(ctx, c, o, names, now) // another replica was first
		} else if err != nil {
			return Bundle{}, fmt.Errorf("create Secret %s: %w", key, err)
		}
		return b, nil
	case err != nil:
		return Bundle{}, fmt.Errorf("get Secret %s: %w", key, err)
	}
	b := FromData(secret.Data)
	if b.Check(names, now) == nil {
		return b, nil
	}
	if b, err = b.Renew(names, now); err != nil {
		return Bundle{}, err
	}
	secret.Data = b.Data()
	if err := c.Update(ctx, secret); apierrors.IsConflict(err) {
		return ensureSecret(ctx, c, o, names, now)
	} else if err != nil {
		return Bundle{}, fmt.Errorf("update Secret %s: %w", key, err)
	}
	return b, nil
}

// writeFiles writes the serving pair and the CA into dir, each file
// replaced atomically and only when its contents differ, so the webhook
// server's certificate watcher sees whole files.
func writeFiles(dir string, b Bundle) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range map[string][]byte{TLSCertKey: b.Cert, TLSKeyKey: b.Key, CACertKey: b.CACert} {
		path := filepath.Join(dir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			continue
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

func setCABundle(ctx context.Context, c client.Client, name string, ca []byte) error {
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Get(ctx, types.NamespacedName{Name: name}, cfg); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get MutatingWebhookConfiguration %s: %w", name, err)
	}
	orig := cfg.DeepCopy()
	changed := false
	for i := range cfg.Webhooks {
		if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, ca) {
			cfg.Webhooks[i].ClientConfig.CABundle = ca
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := c.Patch(ctx, cfg, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("set caBundle of MutatingWebhookConfiguration %s: %w", name, err)
	}
	return nil
}

// Keeper runs Ensure at an interval until its context ends, so that a
// certificate due for renewal is renewed and a caBundle overwritten by an
// apply is put back. It runs on every replica.
type Keeper struct {
	Client   client.Client
	Options  Options
	Interval time.Duration
	// OnError is told about each failed attempt; it may be nil.
	OnError func(error)
}

// Start implements manager.Runnable.
func (k *Keeper) Start(ctx context.Context) error {
	t := time.NewTicker(k.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := Ensure(ctx, k.Client, k.Options, time.Now()); err != nil && k.OnError != nil {
				k.OnError(err)
			}
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// replica serves the webhook and needs the files.
func (k *Keeper) NeedLeaderElection() bool { return false }

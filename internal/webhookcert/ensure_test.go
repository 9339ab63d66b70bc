package webhookcert

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skeinmesh/skein/internal/testenv"
)

var k8s client.Client

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	c, err := testenv.StartCluster(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = c.Stop() }()
	k8s = c.Client
	return m.Run()
}

// TestEnsureAgainstTheAPIServer: the first call mints the bundle into a
// Secret, the files and the caBundle; a second changes nothing; a caBundle
// overwritten by an apply is put back; a certificate due for renewal is
// renewed under the same CA; replicas racing on a new Secret agree.
func TestEnsureAgainstTheAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "skein-"}}
	if err := k8s.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	hook := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "skein-injector-" + ns.Name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "inject.skein.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: ns.Name, Name: "skein-webhook-service", Path: ptr.To("/inject-pod"),
			}},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	if err := k8s.Create(ctx, hook); err != nil {
		t.Fatal(err)
	}
	o := Options{
		Namespace: ns.Name, SecretName: "skein-webhook-certs", ServiceName: "skein-webhook-service",
		WebhookConfigurations: []string{hook.Name, "not-there-yet"}, CertDir: t.TempDir(),
	}
	now := time.Now()
	if err := Ensure(ctx, k8s, o, now); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: o.SecretName}, secret); err != nil {
		t.Fatal(err)
	}
	b := FromData(secret.Data)
	if err := b.Check(DNSNames(o.ServiceName, ns.Name), now); err != nil {
		t.Fatalf("the Secret's bundle: %v", err)
	}
	expectFiles(t, o.CertDir, b)
	expectCABundle(t, hook.Name, b.CACert)

	version := secret.ResourceVersion
	if err := Ensure(ctx, k8s, o, now); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(secret), secret); err != nil || secret.ResourceVersion != version {
		t.Errorf("a second Ensure rewrote the Secret (%v)", err)
	}

	patch := client.MergeFrom(hook.DeepCopy())
	hook.Webhooks[0].ClientConfig.CABundle = []byte("overwritten")
	if err := k8s.Patch(ctx, hook, patch); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(ctx, k8s, o, now); err != nil {
		t.Fatal(err)
	}
	expectCABundle(t, hook.Name, b.CACert)

	later := now.Add(servingValidity - renewBefore/2)
	if err := Ensure(ctx, k8s, o, later); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(secret), secret); err != nil {
		t.Fatal(err)
	}
	renewed := FromData(secret.Data)
	if bytes.Equal(renewed.Cert, b.Cert) || !bytes.Equal(renewed.CACert, b.CACert) || renewed.Check(DNSNames(o.ServiceName, ns.Name), later) != nil {
		t.Error("a certificate due for renewal was not renewed under the same CA")
	}
	expectFiles(t, o.CertDir, renewed)

	// Replicas racing to create the Secret end up with one bundle.
	race := o
	race.SecretName = "raced"
	var wg sync.WaitGroup
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		wg.Add(1)
		go func(o Options) {
			defer wg.Done()
			if err := Ensure(ctx, k8s, o, now); err != nil {
				t.Error(err)
			}
		}(Options{Namespace: race.Namespace, SecretName: race.SecretName, ServiceName: race.ServiceName, CertDir: dir})
	}
	wg.Wait()
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "raced"}, secret); err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		expectFiles(t, dir, FromData(secret.Data))
	}
}

func expectFiles(t *testing.T, dir string, b Bundle) {
	t.Helper()
	for name, want := range map[string][]byte{TLSCertKey: b.Cert, TLSKeyKey: b.Key, CACertKey: b.CACert} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s in %s differs from the Secret (%v)", name, dir, err)
		}
	}
}

func expectCABundle(t *testing.T, name string, ca []byte) {
	t.Helper()
	hook := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, hook); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hook.Webhooks[0].ClientConfig.CABundle, ca) {
		t.Errorf("caBundle of %s is not the CA", name)
	}
}

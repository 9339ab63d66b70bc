// The cert-manager variant of the install, config/with-certmanager: rendered
// the way `kubectl apply -k config/with-certmanager` does, it must hand the
// operator the certificate cert-manager issues for the webhook's Service, and
// have cert-manager set the webhook configuration's caBundle from it.

package manifests_test

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skeinmesh/skein/webhook"
)

const (
	// certManagerGroup is the API group of cert-manager's kinds. Objects of
	// it are kept unstructured: the module does not depend on cert-manager.
	certManagerGroup = "cert-manager.io"
	// injectCAFrom is cert-manager's annotation asking its cainjector to set
	// a webhook configuration's caBundle from the Certificate
	// <namespace>/<name>.
	injectCAFrom = certManagerGroup + "/inject-ca-from"
	// The operator's flags that choose where its serving certificate is.
	certModeFiles = "--webhook-cert-mode=files"
	certDirFlag   = "--webhook-cert-dir="
)

// withCertManager is config/with-certmanager, rendered once.
var withCertManager = sync.OnceValues(func() ([]runtime.Object, error) { return render("with-certmanager") })

// renderedWithCertManager returns the objects of config/with-certmanager of
// type T.
func renderedWithCertManager[T runtime.Object](t *testing.T) []T {
	t.Helper()
	return ofType[T](t, withCertManager)
}

// certManagerObjects returns the cert-manager objects of kind in
// config/with-certmanager.
func certManagerObjects(t *testing.T, kind string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, u := range renderedWithCertManager[*unstructured.Unstructured](t) {
		if u.GroupVersionKind().Group == certManagerGroup && u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// managerContainer returns the container named manager of deploy.
func managerContainer(t *testing.T, deploy *appsv1.Deployment) *corev1.Container {
	t.Helper()
	for i, c := range deploy.Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return &deploy.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatalf("Deployment %s has no container manager", deploy.Name)
	return nil
}

// certVolume returns the volume of deploy mounted in its manager container at
// the directory the operator reads its serving certificate from,
// --webhook-cert-dir.
func certVolume(t *testing.T, deploy *appsv1.Deployment) *corev1.Volume {
	t.Helper()
	c := managerContainer(t, deploy)
	var dir string
	for _, a := range c.Args {
		if d, ok := strings.CutPrefix(a, certDirFlag); ok {
			dir = d
		}
	}
	if dir == "" {
		t.Fatalf("Deployment %s: no %s<dir> in the args of %s: %q", deploy.Name, certDirFlag, c.Name, c.Args)
	}
	i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return filepath.Clean(m.MountPath) == filepath.Clean(dir)
	})
	if i < 0 {
		t.Fatalf("Deployment %s: nothing mounted at %s, the webhook's certificate directory", deploy.Name, dir)
	}
	name := c.VolumeMounts[i].Name
	volumes := deploy.Spec.Template.Spec.Volumes
	j := slices.IndexFunc(volumes, func(v corev1.Volume) bool { return v.Name == name })
	if j < 0 {
		t.Fatalf("Deployment %s mounts volume %s at %s, but has no such volume", deploy.Name, name, dir)
	}
	// The API server refuses a volume of more than one type, as a patch that
	// adds a source without removing the old one would make.
	if src := sources(volumes[j].VolumeSource); len(src) != 1 {
		t.Fatalf("Deployment %s: volume %s is of types %v, want one", deploy.Name, name, src)
	}
	return &volumes[j]
}

// sources returns the volume types set in src (each a pointer field).
func sources(src corev1.VolumeSource) []string {
	var out []string
	v := reflect.ValueOf(src)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			out = append(out, v.Type().Field(i).Name)
		}
	}
	return out
}

// certManagerOperator returns the one Deployment of config/with-certmanager.
func certManagerOperator(t *testing.T) *appsv1.Deployment {
	t.Helper()
	deployments := renderedWithCertManager[*appsv1.Deployment](t)
	if len(deployments) != 1 || deployments[0].Name != "skein-operator" {
		t.Fatalf("want one Deployment, skein-operator; got %d: %v", len(deployments), names(deployments))
	}
	return deployments[0]
}

// injector returns the webhook configuration skein-injector among configs.
func injector(t *testing.T, configs []*admissionregistrationv1.MutatingWebhookConfiguration) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	i := slices.IndexFunc(configs, func(c *admissionregistrationv1.MutatingWebhookConfiguration) bool {
		return c.Name == webhook.ConfigurationName
	})
	if i < 0 {
		t.Fatalf("no MutatingWebhookConfiguration %s; got %v", webhook.ConfigurationName, names(configs))
	}
	if len(configs[i].Webhooks) == 0 {
		t.Fatalf("MutatingWebhookConfiguration %s has no webhooks", configs[i].Name)
	}
	return configs[i]
}

// webhookCertificate returns the Certificate whose Secret the operator
// mounts at its --webhook-cert-dir in config/with-certmanager.
func webhookCertificate(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	deploy := certManagerOperator(t)
	vol := certVolume(t, deploy)
	if vol.Secret == nil || vol.Secret.SecretName == "" {
		t.Fatalf("Deployment %s: the webhook's certificate directory is volume %s, of type %v, not a Secret", deploy.Name, vol.Name, sources(vol.VolumeSource))
	}
	secret := vol.Secret.SecretName
	var found []*unstructured.Unstructured
	for _, cert := range certManagerObjects(t, "Certificate") {
		if s, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName"); s == secret && cert.GetNamespace() == deploy.Namespace {
			found = append(found, cert)
		}
	}
	if len(found) != 1 {
		t.Fatalf("Deployment %s reads its webhook certificate from Secret %s/%s: want one Certificate writing it, got %d: %v",
			deploy.Name, deploy.Namespace, secret, len(found), names(certManagerObjects(t, "Certificate")))
	}
	return found[0]
}

func TestCertManagerCertificateIsTheOneTheOperatorMounts(t *testing.T) {
	cert := webhookCertificate(t)
	secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	// The operator keeps its own certificate in webhook.CertSecretName in its
	// self-signed mode; sharing it would have the two write over each other.
	if secret == webhook.CertSecretName {
		t.Errorf("Certificate %s writes Secret %s, the one of the operator's self-signed mode", cert.GetName(), secret)
	}
	if alg, _, _ := unstructured.NestedString(cert.Object, "spec", "privateKey", "algorithm"); alg != "ECDSA" {
		t.Errorf("Certificate %s: privateKey.algorithm %q, want ECDSA", cert.GetName(), alg)
	}
}

func TestCertManagerCertificateCoversTheWebhookService(t *testing.T) {
	cert := webhookCertificate(t)
	dnsNames, _, err := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	if err != nil {
		t.Fatalf("Certificate %s: spec.dnsNames: %v", cert.GetName(), err)
	}
	services := renderedWithCertManager[*corev1.Service](t)
	config := injector(t, renderedWithCertManager[*admissionregistrationv1.MutatingWebhookConfiguration](t))
	for _, w := range config.Webhooks {
		ref := w.ClientConfig.Service
		if ref == nil {
			t.Errorf("webhook %s is not called through a Service", w.Name)
			continue
		}
		i := slices.IndexFunc(services, func(s *corev1.Service) bool { return s.Namespace == ref.Namespace && s.Name == ref.Name })
		if i < 0 {
			t.Errorf("webhook %s is called through Service %s/%s, which is not in the install", w.Name, ref.Namespace, ref.Name)
			continue
		}
		svc := services[i]
		port := int32(443)
		if ref.Port != nil {
			port = *ref.Port
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port }) {
			t.Errorf("webhook %s is called on port %d of Service %s, which has no such port", w.Name, port, svc.Name)
		}
		// The API server checks the serving certificate for
		// <service>.<namespace>.svc.
		if host := svc.Name + "." + svc.Namespace + ".svc"; !slices.Contains(dnsNames, host) {
			t.Errorf("Certificate %s/%s is for %q; webhook %s is called as %s", cert.GetNamespace(), cert.GetName(), dnsNames, w.Name, host)
		}
	}
}

func TestCertManagerInjectsTheCertificatesCA(t *testing.T) {
	cert := webhookCertificate(t)
	config := injector(t, renderedWithCertManager[*admissionregistrationv1.MutatingWebhookConfiguration](t))
	if got, want := config.Annotations[injectCAFrom], cert.GetNamespace()+"/"+cert.GetName(); got != want {
		t.Errorf("MutatingWebhookConfiguration %s: annotation %s is %q, want %q, the webhook's Certificate", config.Name, injectCAFrom, got, want)
	}
}

func TestCertManagerCertificateIssuerIsInTheInstall(t *testing.T) {
	cert := webhookCertificate(t)
	ref, _, err := unstructured.NestedStringMap(cert.Object, "spec", "issuerRef")
	if err != nil || ref["name"] == "" {
		t.Fatalf("Certificate %s: want spec.issuerRef with a name, got %v (%v)", cert.GetName(), ref, err)
	}
	if g := ref["group"]; g != "" && g != certManagerGroup {
		t.Fatalf("Certificate %s is issued by an issuer of group %s, not cert-manager's own", cert.GetName(), g)
	}
	kind := ref["kind"]
	if kind == "" {
		kind = "Issuer" // cert-manager's default
	}
	namespace := cert.GetNamespace()
	if kind == "ClusterIssuer" {
		namespace = ""
	}
	if !slices.ContainsFunc(certManagerObjects(t, kind), func(u *unstructured.Unstructured) bool {
		return u.GetNamespace() == namespace && u.GetName() == ref["name"]
	}) {
		t.Errorf("Certificate %s is issued by %s %s, which is not in the install", cert.GetName(), kind, ref["name"])
	}
}

func TestCertManagerOperatorReadsItsCertificateFromFiles(t *testing.T) {
	deploy := certManagerOperator(t)
	args := managerContainer(t, deploy).Args
	modes := slices.DeleteFunc(slices.Clone(args), func(a string) bool { return !strings.HasPrefix(a, "--webhook-cert-mode") })
	if !slices.Equal(modes, []string{certModeFiles}) {
		t.Errorf("Deployment %s: want %s exactly once among the certificate-mode flags, got %q (args %q)", deploy.Name, certModeFiles, modes, args)
	}
	if !slices.Contains(args, "--enable-webhook") && !slices.Contains(args, "--enable-webhook=true") {
		t.Errorf("Deployment %s: the webhook is not enabled: args %q", deploy.Name, args)
	}
}

// config/default keeps the operator's own self-signed certificate in an
// in-memory directory, and leaves the caBundle to the operator.
func TestDefaultInstallIsSelfSigned(t *testing.T) {
	deploy := operator(t)
	args := managerContainer(t, deploy).Args
	if slices.ContainsFunc(args, func(a string) bool {
		return strings.HasPrefix(a, "--webhook-cert-mode") && a != "--webhook-cert-mode=self-signed"
	}) {
		t.Errorf("config/default: Deployment %s is not in the self-signed certificate mode: args %q", deploy.Name, args)
	}
	if vol := certVolume(t, deploy); vol.EmptyDir == nil {
		t.Errorf("config/default: Deployment %s: the webhook's certificate directory is volume %s, of type %v, want EmptyDir", deploy.Name, vol.Name, sources(vol.VolumeSource))
	}
	config := injector(t, rendered[*admissionregistrationv1.MutatingWebhookConfiguration](t))
	if v, ok := config.Annotations[injectCAFrom]; ok {
		t.Errorf("config/default: MutatingWebhookConfiguration %s has %s: %q; cert-manager and the operator would both set its caBundle", config.Name, injectCAFrom, v)
	}
}

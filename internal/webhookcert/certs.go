// Package webhookcert is the operator's self-signed mode for its admission
// webhook's serving certificate, for `make run`, the local cluster and any
// cluster without cert-manager: it mints a CA and a serving certificate for
// the webhook Service, keeps them in a Secret that every replica shares,
// writes them where the webhook server reads them, and puts the CA in the
// webhook configuration's caBundle.
package webhookcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Keys of the Secret and names of the files in the certificate directory,
// as controller-runtime's webhook server expects them.
const (
	CACertKey  = "ca.crt"
	CAKeyKey   = "ca.key"
	TLSCertKey = "tls.crt"
	TLSKeyKey  = "tls.key"
)

// Lifetimes: the CA outlives many serving certificates, and a serving
// certificate is renewed when a third of its life is left.
const (
	caValidity      = 10 * 365 * 24 * time.Hour
	servingValidity = 365 * 24 * time.Hour
	renewBefore     = servingValidity / 3
)

// Bundle is a CA and a serving certificate signed by it, PEM-encoded.
type Bundle struct {
	CACert, CAKey, Cert, Key []byte
}

// Data is the bundle as Secret data.
func (b Bundle) Data() map[string][]byte {
	return map[string][]byte{CACertKey: b.CACert, CAKeyKey: b.CAKey, TLSCertKey: b.Cert, TLSKeyKey: b.Key}
}

// FromData reads a bundle from Secret data; missing keys leave fields empty.
func FromData(data map[string][]byte) Bundle {
	return Bundle{CACert: data[CACertKey], CAKey: data[CAKeyKey], Cert: data[TLSCertKey], Key: data[TLSKeyKey]}
}

// DNSNames are the names a client may use for Service name in namespace.
func DNSNames(service, namespace string) []string {
	return []string{
		service,
		service + "." + namespace,
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
	}
}

// NewBundle mints a new CA and a serving certificate for dnsNames, valid from now.
func NewBundle(dnsNames []string, now time.Time) (Bundle, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Bundle{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "skein-webhook-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Bundle{}, fmt.Errorf("sign the webhook CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Bundle{}, err
	}
	caKeyPEM, err := encodeKey(caKey)
	if err != nil {
		return Bundle{}, err
	}
	b := Bundle{CACert: encodeCert(caDER), CAKey: caKeyPEM}
	return b.reissue(ca, caKey, dnsNames, now)
}

// Renew returns the bundle with a new serving certificate signed by its CA,
// or a new bundle when the CA itself cannot be used.
func (b Bundle) Renew(dnsNames []string, now time.Time) (Bundle, error) {
	ca, caKey, err := b.parseCA()
	if err != nil || now.Add(servingValidity).After(ca.NotAfter) {
		return NewBundle(dnsNames, now)
	}
	return b.reissue(ca, caKey, dnsNames, now)
}

func (b Bundle) reissue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, dnsNames []string, now time.Time) (Bundle, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Bundle{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     dnsNames,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(servingValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return Bundle{}, fmt.Errorf("sign the webhook serving certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Bundle{}, err
	}
	b.Cert, b.Key = encodeCert(der), keyPEM
	return b, nil
}

// Check returns nil when the bundle holds a serving certificate for every
// name in dnsNames, signed by its CA, matching its key, and not due for
// renewal at now; otherwise it says why not.
func (b Bundle) Check(dnsNames []string, now time.Time) error {
	ca, _, err := b.parseCA()
	if err != nil {
		return err
	}
	cert, err := parseCert(b.Cert)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	if _, err := tls.X509KeyPair(b.Cert, b.Key); err != nil {
		return fmt.Errorf("serving key: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range dnsNames {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now}); err != nil {
			return fmt.Errorf("serving certificate for %s: %w", name, err)
		}
	}
	if now.Add(renewBefore).After(cert.NotAfter) {
		return fmt.Errorf("serving certificate expires at %s: due for renewal", cert.NotAfter.Format(time.RFC3339))
	}
	return nil
}

func (b Bundle) parseCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	ca, err := parseCert(b.CACert)
	if err != nil {
		return nil, nil, fmt.Errorf("CA certificate: %w", err)
	}
	block, _ := pem.Decode(b.CAKey)
	if block == nil {
		return nil, nil, errors.New("CA key: no PEM block")
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("CA key: %w", err)
	}
	if !key.PublicKey.Equal(ca.PublicKey) {
		return nil, nil, errors.New("CA key does not match the CA certificate")
	}
	return ca, key, nil
}

func parseCert(pemBytes []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Params are what the certificates and kubeconfigs depend on. A directory
// written for other Params is rewritten (the CA and the service-account key
// are kept).
type Params struct {
	// NodeName is the node's name: the kubelet's identity is
	// system:node:NodeName.
	NodeName string `json:"nodeName"`
	// NodeIP is the address the API server advertises and serves on.
	NodeIP net.IP `json:"nodeIP"`
	// ServiceIP is the ClusterIP of the kubernetes Service, the first
	// address of the service CIDR.
	ServiceIP net.IP `json:"serviceIP"`
	// Server is the API server's URL written into every kubeconfig.
	Server string `json:"server"`
}

// client is one identity that gets a client certificate and a kubeconfig.
type client struct {
	name string   // file name: NAME.kubeconfig
	cn   string   // user name
	orgs []string // groups
}

// clients are the identities of the cluster's components and its admin.
func clients(p Params) []client {
	return []client{
		{name: "admin", cn: "kubernetes-admin", orgs: []string{"system:masters"}},
		{name: "controller-manager", cn: "system:kube-controller-manager"},
		{name: "scheduler", cn: "system:kube-scheduler"},
		{name: "kubelet", cn: "system:node:" + p.NodeName, orgs: []string{"system:nodes"}},
		{name: "kube-proxy", cn: "system:kube-proxy"},
		{name: "coredns", cn: "skein:coredns"},
	}
}

// validity is how long every certificate is valid.
const validity = 10 * 365 * 24 * time.Hour

// Write makes dir hold, for p: ca.{crt,key}; apiserver.{crt,key} (serving);
// apiserver-kubelet-client.{crt,key}; kubelet-serving.{crt,key};
// front-proxy-ca.{crt,key} and front-proxy-client.{crt,key} (the API
// server's request-header authentication, which the controller manager and
// the scheduler look up); sa.{key,pub}; and NAME.kubeconfig for each client. It does nothing when dir
// already holds them for p, and reports whether it wrote anything.
func Write(dir string, p Params) (bool, error) {
	want, err := json.Marshal(p)
	if err != nil {
		return false, err
	}
	stamp := filepath.Join(dir, "params.json")
	if got, err := os.ReadFile(stamp); err == nil && bytes.Equal(got, want) && complete(dir, p) {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	ca, err := loadOrCreateCA(dir, "ca", "skein-cluster-ca")
	if err != nil {
		return false, err
	}
	frontProxy, err := loadOrCreateCA(dir, "front-proxy-ca", "skein-cluster-front-proxy-ca")
	if err != nil {
		return false, err
	}
	if err := frontProxy.issue(dir, "front-proxy-client", pkix.Name{CommonName: "front-proxy-client"},
		x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return false, err
	}
	if err := writeServiceAccountKey(dir); err != nil {
		return false, err
	}

	apiDNS := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", "localhost", p.NodeName}
	apiIPs := []net.IP{p.NodeIP, net.IPv4(127, 0, 0, 1), p.ServiceIP}
	if err := ca.issue(dir, "apiserver", pkix.Name{CommonName: "kube-apiserver"},
		x509.ExtKeyUsageServerAuth, apiDNS, apiIPs); err != nil {
		return false, err
	}
	if err := ca.issue(dir, "kubelet-serving", pkix.Name{CommonName: "system:node:" + p.NodeName, Organization: []string{"system:nodes"}},
		x509.ExtKeyUsageServerAuth, []string{p.NodeName, "localhost"}, []net.IP{p.NodeIP, net.IPv4(127, 0, 0, 1)}); err != nil {
		return false, err
	}
	if err := ca.issue(dir, "apiserver-kubelet-client", pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return false, err
	}
	for _, c := range clients(p) {
		certPEM, keyPEM, err := ca.sign(pkix.Name{CommonName: c.cn, Organization: c.orgs}, x509.ExtKeyUsageClientAuth, nil, nil)
		if err != nil {
			return false, fmt.Errorf("client certificate of %s: %w", c.cn, err)
		}
		kc := kubeconfig(p.Server, c.cn, ca.certPEM, certPEM, keyPEM)
		if err := writeFile(filepath.Join(dir, c.name+".kubeconfig"), kc, 0o600); err != nil {
			return false, err
		}
	}
	return true, writeFile(stamp, want, 0o600)
}

// complete reports whether dir holds every file Write writes for p.
func complete(dir string, p Params) bool {
	files := []string{"sa.key", "sa.pub"}
	for _, n := range []string{"ca", "front-proxy-ca", "front-proxy-client", "apiserver", "kubelet-serving", "apiserver-kubelet-client"} {
		files = append(files, n+".crt", n+".key")
	}
	for _, c := range clients(p) {
		files = append(files, c.name+".kubeconfig")
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// authority is a CA.
type authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// loadOrCreateCA returns the CA in dir/NAME.{crt,key}, creating it with
// common name cn when missing.
func loadOrCreateCA(dir, name, cn string) (*authority, error) {
	certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	certPEM, certErr := os.ReadFile(certFile)
	keyPEM, keyErr := os.ReadFile(keyFile)
	if certErr == nil && keyErr == nil {
		cert, err := parseCert(certPEM)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", certFile, err)
		}
		key, err := parseKey(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyFile, err)
		}
		return &authority{cert: cert, key: key, certPEM: certPEM}, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if keyPEM, err = encodeKey(key); err != nil {
		return nil, err
	}
	if err := writeFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(certFile, certPEM, 0o644); err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, certPEM: certPEM}, nil
}

// sign returns a new key and a certificate for it, signed by the CA.
func (a *authority) sign(subject pkix.Name, usage x509.ExtKeyUsage, dns []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, nil, err
	}
	if keyPEM, err = encodeKey(key); err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// issue signs a certificate and writes it as dir/NAME.crt and dir/NAME.key.
func (a *authority) issue(dir, name string, subject pkix.Name, usage x509.ExtKeyUsage, dns []string, ips []net.IP) error {
	certPEM, keyPEM, err := a.sign(subject, usage, dns, ips)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", name, err)
	}
	if err := writeFile(filepath.Join(dir, name+".key"), keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, name+".crt"), certPEM, 0o644)
}

// writeServiceAccountKey writes the key pair that signs service-account
// tokens, unless it exists.
func writeServiceAccountKey(dir string) error {
	keyFile, pubFile := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if _, err := os.Stat(keyFile); err == nil {
		if _, err := os.Stat(pubFile); err == nil {
			return nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := writeFile(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// kubeconfig returns a kubeconfig for user with everything embedded.
func kubeconfig(server, user string, caPEM, certPEM, keyPEM []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: skein
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: skein
  context:
    cluster: skein
    user: %s
current-context: skein
`, server, b64(caPEM), user, b64(certPEM), b64(keyPEM), user)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "EC PRIVATE KEY" {
		return nil, errors.New("no PEM EC private key")
	}
	return x509.ParseECPrivateKey(b.Bytes)
}

// writeFile writes data to path through a temporary file, so a reader never
// sees half a file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

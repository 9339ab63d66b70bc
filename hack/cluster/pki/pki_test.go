package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

var testParams = Params{
	NodeName:  "node-a",
	NodeIP:    net.IPv4(192, 0, 2, 7).To4(),
	ServiceIP: net.IPv4(10, 96, 0, 1).To4(),
	Server:    "https://192.0.2.7:6443",
}

func TestWriteServingCertificates(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, testParams); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		file     string           // certificate under dir
		ca       string           // the CA under dir that signed it
		usage    x509.ExtKeyUsage // what it must be valid for
		hosts    []string         // names and addresses it must be valid for
		notHosts []string         // and must not be
	}{{
		name:  "API server, for every name a client uses",
		file:  "apiserver.crt",
		ca:    "ca.crt",
		usage: x509.ExtKeyUsageServerAuth,
		hosts: []string{"192.0.2.7", "127.0.0.1", "10.96.0.1", "kubernetes", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local", "localhost", "node-a"},
		notHosts: []string{"10.96.0.10", "example.com"},
	}, {
		name:     "kubelet, for the node's address and name",
		file:     "kubelet-serving.crt",
		ca:       "ca.crt",
		usage:    x509.ExtKeyUsageServerAuth,
		hosts:    []string{"192.0.2.7", "node-a"},
		notHosts: []string{"10.96.0.1", "kubernetes"},
	}, {
		name:  "API server's client certificate for kubelets",
		file:  "apiserver-kubelet-client.crt",
		ca:    "ca.crt",
		usage: x509.ExtKeyUsageClientAuth,
	}, {
		name:  "API server's client certificate as the front proxy, from its own CA",
		file:  "front-proxy-client.crt",
		ca:    "front-proxy-ca.crt",
		usage: x509.ExtKeyUsageClientAuth,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := readCert(t, filepath.Join(dir, tt.file))
			roots := x509.NewCertPool()
			roots.AddCert(readCert(t, filepath.Join(dir, tt.ca)))
			opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{tt.usage}}
			if _, err := cert.Verify(opts); err != nil {
				t.Fatalf("does not verify against the CA for %v: %v", tt.usage, err)
			}
			for _, h := range tt.hosts {
				if err := cert.VerifyHostname(h); err != nil {
					t.Errorf("not valid for %s: %v", h, err)
				}
			}
			for _, h := range tt.notHosts {
				if err := cert.VerifyHostname(h); err == nil {
					t.Errorf("valid for %s, which it should not name", h)
				}
			}
		})
	}
}

func TestWriteKubeconfigs(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, testParams); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "ca.crt")))

	tests := []struct {
		name   string
		user   string   // the certificate's common name, which the API server takes as the user
		groups []string // its organizations, taken as groups
	}{
		{name: "admin", user: "kubernetes-admin", groups: []string{"system:masters"}},
		{name: "controller-manager", user: "system:kube-controller-manager"},
		{name: "scheduler", user: "system:kube-scheduler"},
		{name: "kubelet", user: "system:node:node-a", groups: []string{"system:nodes"}},
		{name: "kube-proxy", user: "system:kube-proxy"},
		{name: "coredns", user: "skein:coredns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc, err := os.ReadFile(filepath.Join(dir, tt.name+".kubeconfig"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(kc, []byte("server: https://192.0.2.7:6443\n")) {
				t.Errorf("kubeconfig does not name the server:\n%s", kc)
			}
			cert := parseCertData(t, kc, "client-certificate-data")
			if cert.Subject.CommonName != tt.user || !slices.Equal(cert.Subject.Organization, tt.groups) {
				t.Errorf("user %q groups %q, want %q %q", cert.Subject.CommonName, cert.Subject.Organization, tt.user, tt.groups)
			}
			opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
			if _, err := cert.Verify(opts); err != nil {
				t.Errorf("client certificate does not verify against the CA: %v", err)
			}
			if ca := parseCertData(t, kc, "certificate-authority-data"); !ca.Equal(readCert(t, filepath.Join(dir, "ca.crt"))) {
				t.Error("kubeconfig's CA is not the cluster's CA")
			}
		})
	}
}

// TestWriteAgain pins that cluster.sh may run pki on every `up`: the same
// parameters change nothing, a lost file is written again, and a new node
// address reissues the serving
// certificate but keeps the CA and the service-account key, so tokens and
// kubeconfigs held elsewhere stay valid.
func TestWriteAgain(t *testing.T) {
	dir := t.TempDir()
	if wrote, err := Write(dir, testParams); err != nil || !wrote {
		t.Fatalf("first Write: wrote %v, err %v", wrote, err)
	}
	before := readAll(t, dir)

	if wrote, err := Write(dir, testParams); err != nil || wrote {
		t.Fatalf("second Write with the same parameters: wrote %v, err %v", wrote, err)
	}
	if after := readAll(t, dir); !mapsEqual(before, after) {
		t.Error("second Write with the same parameters changed files")
	}

	if err := os.Remove(filepath.Join(dir, "kubelet.kubeconfig")); err != nil {
		t.Fatal(err)
	}
	if wrote, err := Write(dir, testParams); err != nil || !wrote {
		t.Fatalf("Write after a file was lost: wrote %v, err %v", wrote, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kubelet.kubeconfig")); err != nil {
		t.Errorf("Write did not restore a lost file: %v", err)
	}
	before = readAll(t, dir)

	moved := testParams
	moved.NodeIP = net.IPv4(192, 0, 2, 9).To4()
	moved.Server = "https://192.0.2.9:6443"
	if wrote, err := Write(dir, moved); err != nil || !wrote {
		t.Fatalf("Write for a new address: wrote %v, err %v", wrote, err)
	}
	after := readAll(t, dir)
	for _, f := range []string{"ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub"} {
		if !bytes.Equal(before[f], after[f]) {
			t.Errorf("%s changed with the node's address", f)
		}
	}
	if err := readCert(t, filepath.Join(dir, "apiserver.crt")).VerifyHostname("192.0.2.9"); err != nil {
		t.Errorf("API server certificate not reissued for the new address: %v", err)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := parseCert(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cert
}

func parseCertData(t *testing.T, kubeconfig []byte, field string) *x509.Certificate {
	t.Helper()
	m := regexp.MustCompile(field + `: (\S+)`).FindSubmatch(kubeconfig)
	if m == nil {
		t.Fatalf("kubeconfig has no %s", field)
	}
	data, err := base64.StdEncoding.DecodeString(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := parseCert(data)
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	return cert
}

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	return files
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

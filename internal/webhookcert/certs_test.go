package webhookcert

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

var names = DNSNames("skein-webhook-service", "skein-system")

func TestNewBundleServesTLSForEveryServiceName(t *testing.T) {
	now := time.Now()
	b, err := NewBundle(names, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(names, now); err != nil {
		t.Fatalf("a new bundle fails its own check: %v", err)
	}
	pair, err := tls.X509KeyPair(b.Cert, b.Key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b.CACert)
	for _, name := range append(names, "other.skein-system.svc") {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: name})
		ok := !strings.HasPrefix(name, "other")
		if (err == nil) != ok {
			t.Errorf("handshake as %s: err %v, want success %v", name, err, ok)
		}
		if c != nil {
			c.Close()
		}
	}
}

func TestCheck(t *testing.T) {
	now := time.Now()
	b, err := NewBundle(names, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewBundle(names, now)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		// bundle is checked at time at; want is a fragment of the error, "" for none.
		bundle Bundle
		at     time.Time
		want   string
	}{
		{name: "fresh", bundle: b, at: now},
		{name: "half way through its life", bundle: b, at: now.Add(servingValidity / 2)},
		{name: "due for renewal", bundle: b, at: now.Add(servingValidity - renewBefore/2), want: "due for renewal"},
		{name: "expired", bundle: b, at: now.Add(servingValidity + time.Hour), want: "expired"},
		{name: "another CA", bundle: Bundle{CACert: other.CACert, CAKey: other.CAKey, Cert: b.Cert, Key: b.Key}, at: now, want: "unknown authority"},
		{name: "key of another certificate", bundle: Bundle{CACert: b.CACert, CAKey: b.CAKey, Cert: b.Cert, Key: other.Key}, at: now, want: "serving key"},
		{name: "CA key of another CA", bundle: Bundle{CACert: b.CACert, CAKey: other.CAKey, Cert: b.Cert, Key: b.Key}, at: now, want: "does not match"},
		{name: "empty", bundle: Bundle{}, at: now, want: "CA certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.bundle.Check(names, tc.at)
			if tc.want == "" && err != nil {
				t.Fatalf("Check: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Check = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRenewKeepsAUsableCA(t *testing.T) {
	now := time.Now()
	b, err := NewBundle(names, now)
	if err != nil {
		t.Fatal(err)
	}
	later := now.Add(servingValidity - renewBefore/2)
	renewed, err := b.Renew(names, later)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(renewed.CACert, b.CACert) || bytes.Equal(renewed.Cert, b.Cert) {
		t.Error("renewal should keep the CA, so clients keep trusting it, and change the serving certificate")
	}
	if err := renewed.Check(names, later); err != nil {
		t.Errorf("renewed bundle: %v", err)
	}
	fresh, err := Bundle{CACert: []byte("junk")}.Renew(names, now)
	if err != nil || fresh.Check(names, now) != nil || bytes.Equal(fresh.CACert, b.CACert) {
		t.Errorf("renewal of an unusable CA should mint a new one: %v", err)
	}
}

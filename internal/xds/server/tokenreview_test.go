package server

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestSplitServiceAccount(t *testing.T) {
	tests := []struct {
		name     string
		username string
		ns, sa   string // empty when refused
	}{
		{name: "service account", username: "system:serviceaccount:shop:web", ns: "shop", sa: "web"},
		{name: "user", username: "alice"},
		{name: "node", username: "system:node:n1"},
		{name: "no name", username: "system:serviceaccount:shop:"},
		{name: "extra colon", username: "system:serviceaccount:shop:web:x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, sa, ok := splitServiceAccount(tt.username)
			if ok != (tt.ns != "") || ns != tt.ns || sa != tt.sa {
				t.Errorf("splitServiceAccount(%q) = %q, %q, %v; want %q, %q", tt.username, ns, sa, ok, tt.ns, tt.sa)
			}
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	jwt := func(payload string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	tests := []struct {
		name  string
		token string
		want  time.Time // zero when there is no expiry
	}{
		{name: "exp claim", token: jwt(`{"exp":1800000000,"aud":["skein"]}`), want: time.Unix(1800000000, 0)},
		{name: "no exp", token: jwt(`{"aud":["skein"]}`)},
		{name: "not a JWT", token: "opaque"},
		{name: "bad base64", token: "a.!!!.c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tokenExpiry(tt.token)
			if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
				t.Errorf("tokenExpiry = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}

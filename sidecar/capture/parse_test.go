package capture

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []uint16
		wantErr string // in the error; "" for none
	}{
		{name: "empty", in: ""},
		{name: "list", in: "15090,15021", want: []uint16{15090, 15021}},
		{name: "spaces, empties and repeats", in: " 80 , ,443,80,", want: []uint16{80, 443}},
		{name: "not a number", in: "80,http", wantErr: `port "http" in "80,http"`},
		{name: "zero", in: "0", wantErr: `port "0"`},
		{name: "too big", in: "65536", wantErr: `port "65536"`},
		{name: "range", in: "8000-8080", wantErr: `port "8000-8080"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePorts(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestParseCIDRs(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name    string
		in      string
		want    []netip.Prefix
		wantErr string // in the error; "" for none
	}{
		{name: "empty", in: ""},
		{name: "both families", in: "10.0.0.0/8,fd00::/8", want: []netip.Prefix{p("10.0.0.0/8"), p("fd00::/8")}},
		{name: "bare addresses", in: "10.1.2.3, fd00::1", want: []netip.Prefix{p("10.1.2.3/32"), p("fd00::1/128")}},
		{name: "host bits cleared", in: "10.1.2.3/8", want: []netip.Prefix{p("10.0.0.0/8")}},
		{name: "repeats", in: "10.0.0.0/8,10.0.0.0/8", want: []netip.Prefix{p("10.0.0.0/8")}},
		{name: "bad bits", in: "10.0.0.0/8,10.0.0.0/33", wantErr: `CIDR "10.0.0.0/33" in "10.0.0.0/8,10.0.0.0/33"`},
		{name: "not an address", in: "example.com", wantErr: `CIDR "example.com"`},
		{name: "zone", in: "fe80::1%eth0", wantErr: `CIDR "fe80::1%eth0"`},
		{name: "star", in: "*", wantErr: `CIDR "*"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCIDRs(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestParseIncludeCIDRs(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []netip.Prefix
		wantErr string // in the error; "" for none
	}{
		{name: "star is every destination", in: "*"},
		{name: "list", in: "10.0.0.0/8", want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{name: "empty is refused", in: " ", wantErr: `list none: use "*"`},
		{name: "star with others", in: "*,10.0.0.0/8", wantErr: `"*" must stand alone`},
		{name: "bad item", in: "10.0.0.0/8,nope", wantErr: `CIDR "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIncludeCIDRs(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func checkParse[T comparable](t *testing.T, got []T, err error, want []T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want one containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

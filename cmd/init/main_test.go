package main

import (
	"strings"
	"testing"
)

// TestRunRefusesBadFlags checks the flags that fail before any iptables tool
// runs; the rules themselves are tested in sidecar/capture, in network
// namespaces.
func TestRunRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		{name: "root as proxy", args: []string{"--proxy-uid=0"}, want: "--proxy-uid 0: want a non-root ID"},
		{name: "port out of range", args: []string{"--inbound-port=70000"}, want: "--inbound-port 70000"},
		{name: "same ports", args: []string{"--inbound-port=15001", "--ipv6=false"}, want: "both 15001"},
		{name: "bad port list", args: []string{"--exclude-inbound-ports=80,http"}, want: `--exclude-inbound-ports: port "http"`},
		{name: "bad outbound port list", args: []string{"--exclude-outbound-ports=-1"}, want: `--exclude-outbound-ports: port "-1"`},
		{name: "bad CIDR", args: []string{"--exclude-outbound-cidrs=10.0.0.0/33"}, want: `--exclude-outbound-cidrs: CIDR "10.0.0.0/33"`},
		{name: "empty include", args: []string{"--include-outbound-cidrs="}, want: `--include-outbound-cidrs: included CIDRs "" list none`},
		{name: "bad ipv6 mode", args: []string{"--ipv6=yes"}, want: `--ipv6 "yes": want true, false or auto`},
		{name: "argument", args: []string{"extra"}, want: `unexpected argument "extra"`},
		{name: "unknown flag", args: []string{"--exclude-ports=80"}, want: "flag provided but not defined: -exclude-ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(append(tt.args, "--dry-run"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

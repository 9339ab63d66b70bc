// Command skein-init is the init container of every meshed pod: it installs
// the nat-table rules that send the pod's TCP traffic through its proxy,
// prints the resulting nat table, and exits. It needs NET_ADMIN and NET_RAW.
// Its flags mirror the pod annotations of the same names (skein.io/...).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/skeinmesh/skein/sidecar/capture"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "skein-init:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("skein-init", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	proxyUID := fs.Uint("proxy-uid", capture.DefaultProxyUID, "UID of the proxy, whose own traffic is never captured")
	proxyGID := fs.Uint("proxy-gid", capture.DefaultProxyGID, "GID of the proxy, whose own traffic is never captured")
	inboundPort := fs.Uint("inbound-port", capture.DefaultInboundPort, "proxy port that inbound TCP is redirected to")
	outboundPort := fs.Uint("outbound-port", capture.DefaultOutboundPort, "proxy port that outbound TCP is redirected to")
	excludeInPorts := fs.String("exclude-inbound-ports", "", "inbound ports not captured, such as 8081,9090 (the proxy's own ports never are)")
	excludeOutPorts := fs.String("exclude-outbound-ports", "", "outbound destination ports not captured, such as 5432")
	excludeCIDRs := fs.String("exclude-outbound-cidrs", "", "outbound destinations not captured, such as 10.0.0.0/8,fd00::/8")
	includeCIDRs := fs.String("include-outbound-cidrs", capture.AllDestinations, `outbound destinations captured; "*" is every one`)
	ipv6 := fs.String("ipv6", "auto", "also capture IPv6: true, false, or auto (when the pod has a global IPv6 address)")
	dryRun := fs.Bool("dry-run", false, "print the iptables-restore input instead of applying it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	var cfg capture.Config
	var err error
	if cfg.ProxyUID, err = id("proxy-uid", *proxyUID); err != nil {
		return err
	}
	if cfg.ProxyGID, err = id("proxy-gid", *proxyGID); err != nil {
		return err
	}
	if cfg.InboundPort, err = port("inbound-port", *inboundPort); err != nil {
		return err
	}
	if cfg.OutboundPort, err = port("outbound-port", *outboundPort); err != nil {
		return err
	}
	if cfg.ExcludeInboundPorts, err = capture.ParsePorts(*excludeInPorts); err != nil {
		return fmt.Errorf("--exclude-inbound-ports: %w", err)
	}
	if cfg.ExcludeOutboundPorts, err = capture.ParsePorts(*excludeOutPorts); err != nil {
		return fmt.Errorf("--exclude-outbound-ports: %w", err)
	}
	if cfg.ExcludeOutboundCIDRs, err = capture.ParseCIDRs(*excludeCIDRs); err != nil {
		return fmt.Errorf("--exclude-outbound-cidrs: %w", err)
	}
	if cfg.IncludeOutboundCIDRs, err = capture.ParseIncludeCIDRs(*includeCIDRs); err != nil {
		return fmt.Errorf("--include-outbound-cidrs: %w", err)
	}
	if cfg.IPv6, err = wantIPv6(*ipv6); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	families := []capture.Family{capture.IPv4}
	if cfg.IPv6 {
		families = append(families, capture.IPv6)
	}
	if *dryRun {
		for _, f := range families {
			rules, err := capture.Rules(cfg, f)
			if err != nil {
				return err
			}
			fmt.Printf("# %s\n%s", f, rules)
		}
		return nil
	}
	if err := capture.Apply(ctx, cfg); err != nil {
		return err
	}
	for _, f := range families {
		saved, err := capture.Save(ctx, f)
		if err != nil {
			return err
		}
		fmt.Print(saved)
	}
	return nil
}

func port(flagName string, v uint) (uint16, error) {
	if v == 0 || v > 65535 {
		return 0, fmt.Errorf("--%s %d: want a port from 1 to 65535", flagName, v)
	}
	return uint16(v), nil
}

// id refuses 0, whose traffic would escape capture, and what is not an ID.
func id(flagName string, v uint) (uint32, error) {
	if v == 0 || v >= 1<<32-1 {
		return 0, fmt.Errorf("--%s %d: want a non-root ID below 4294967295", flagName, v)
	}
	return uint32(v), nil
}

func wantIPv6(mode string) (bool, error) {
	switch mode {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "auto":
		return capture.HasGlobalIPv6()
	}
	return false, fmt.Errorf("--ipv6 %q: want true, false or auto", mode)
}

// Command controlplane is the control plane's benchmark (issue 5), run by
// `make bench-controlplane`. It starts a real kube-apiserver and etcd, runs
// the operator (cmd/manager) against them as a separate process, creates a
// mesh of -proxies pods, connects one raw ADS client per pod in its place,
// and times how long a TrafficPolicy change and an EndpointSlice change take
// until every proxy ACKed the new version. It prints the latencies (p50, p99,
// max) next to the goal (p99 under 1s), and the operator's memory. It is a
// benchmark, not a test: a missed goal still exits 0; only a broken run
// (an error, an interrupt) exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// goal is issue 5's target for the time until every proxy ACKed a change.
const goal = time.Second

// config is the benchmark's flags.
type config struct {
	proxies    int
	namespaces int
	services   int
	rounds     int
	parallel   int
	// grpc gives every service a gRPC port besides its HTTP port.
	grpc bool
	// xds is sotw, delta or mixed (every other proxy uses delta).
	xds string
	// timeout bounds each round; connectTimeout the cold start.
	timeout, connectTimeout time.Duration
	// managerLog, when set, keeps the operator's log there.
	managerLog string
	// managerFlags are added to the operator's command line.
	managerFlags stringList
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var cfg config
	flag.IntVar(&cfg.proxies, "proxies", 1000, "Simulated proxies, one per pod, spread evenly over the namespaces.")
	flag.IntVar(&cfg.namespaces, "namespaces", 10, "Namespaces of the mesh.")
	flag.IntVar(&cfg.services, "services", 5, "MeshServices per namespace, each with a Service, an EndpointSlice listing its share of the namespace's pods, and a TrafficPolicy with retries.")
	flag.BoolVar(&cfg.grpc, "grpc", true, "Give every service a gRPC port (protocol GRPC) besides its HTTP port.")
	flag.IntVar(&cfg.rounds, "rounds", 3, "Rounds of each change (TrafficPolicy, endpoint).")
	flag.IntVar(&cfg.parallel, "parallel", 16, "API requests in flight while creating the mesh.")
	flag.StringVar(&cfg.xds, "xds", "mixed", "xDS flavour of the proxies: sotw, delta, or mixed (every other proxy uses delta).")
	flag.DurationVar(&cfg.timeout, "timeout", 60*time.Second, "How long a round waits for every proxy to ACK the change.")
	flag.DurationVar(&cfg.connectTimeout, "connect-timeout", 3*time.Minute, "How long the cold start waits for every proxy's first config.")
	flag.StringVar(&cfg.managerLog, "manager-log", "", "Keep the operator's log in this file (default: a temporary file, removed at the end).")
	flag.Var(&cfg.managerFlags, "manager-flag", "An extra flag for the operator, e.g. -manager-flag=--zap-log-level=debug (repeatable).")
	flag.Parse()
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-controlplane:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-controlplane:", err)
		os.Exit(1)
	}
}

func (c config) validate() error {
	switch {
	case c.namespaces < 1 || c.services < 1 || c.rounds < 1 || c.parallel < 1:
		return fmt.Errorf("-namespaces, -services, -rounds and -parallel must be at least 1")
	case c.proxies < c.namespaces*c.services:
		return fmt.Errorf("-proxies=%d: want at least one pod per service (%d)", c.proxies, c.namespaces*c.services)
	case c.proxies%c.namespaces != 0:
		return fmt.Errorf("-proxies=%d is not a multiple of -namespaces=%d", c.proxies, c.namespaces)
	case c.xds != "sotw" && c.xds != "delta" && c.xds != "mixed":
		return fmt.Errorf("-xds=%q: want sotw, delta or mixed", c.xds)
	}
	return nil
}

// progress prints a line with the time since the benchmark started.
var started = time.Now()

func progress(format string, args ...any) {
	fmt.Printf("[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

// Command skein-proxy is Skein's sidecar proxy: Envoy's v3 config (a
// bootstrap, then listeners, routes, clusters and endpoints over ADS)
// applied by sidecar/proxy, the health port (15020), admin on
// 127.0.0.1:15000 and metrics on 15090.
//
//	skein-proxy -c bootstrap.yaml   run from an Envoy bootstrap (--config-path)
//	skein-proxy [flags]             run as an injected sidecar
//	skein-proxy wait [flags]        wait until the proxy in this pod is ready
//
// Without -c the proxy is an injected sidecar: its bootstrap is built from
// the environment the injector sets (POD_NAME, POD_NAMESPACE, POD_IP,
// SKEIN_XDS_ADDRESS) and its config comes over ADS, authenticated with the
// projected token (--xds-token-file). Until the first listeners arrive it
// serves the capture ports as a plain passthrough, so the pod's traffic
// flows from the moment skein-init redirected it; the control plane's
// listeners then take the same sockets over. Without SKEIN_XDS_ADDRESS
// there is no control plane and the passthrough is all it serves.
//
// SIGTERM and admin's /quitquitquit drain: not ready, stop accepting, wait
// for connections in flight up to --drain-timeout, exit 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/skeinmesh/skein/sidecar/admin"
	"github.com/skeinmesh/skein/sidecar/bootstrap"
	"github.com/skeinmesh/skein/sidecar/health"
	"github.com/skeinmesh/skein/sidecar/proxy"
	"github.com/skeinmesh/skein/sidecar/stats"
	"github.com/skeinmesh/skein/sidecar/xdsclient"
)

func main() {
	level := new(slog.LevelVar)
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var err error
	if len(os.Args) > 1 && os.Args[1] == "wait" {
		err = wait(os.Args[2:])
	} else {
		err = run(log, level, os.Args[1:])
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		log.Error("skein-proxy failed", "err", err)
		os.Exit(1)
	}
}

// options are the command line's.
type options struct {
	configPath  string
	tokenFile   string
	serviceNode string
	outbound    int
	inbound     int
	healthPort  int
	statsPort   int
	adminAddr   string
	drain       time.Duration
	logLevel    string
}

func parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("skein-proxy", flag.ContinueOnError)
	fs.StringVar(&o.configPath, "c", "", "Envoy v3 bootstrap file, YAML or JSON; empty: the injected sidecar's, built from the environment")
	fs.StringVar(&o.configPath, "config-path", "", "same as -c")
	fs.StringVar(&o.tokenFile, "xds-token-file", "", "token sent to the control plane, read on every connect; empty: none with -c, "+bootstrap.DefaultTokenFile+" without")
	fs.StringVar(&o.serviceNode, "service-node", "", "replaces the bootstrap's node.id")
	fs.IntVar(&o.outbound, "outbound-port", 15001, "port of the outbound capture passthrough (injected sidecar)")
	fs.IntVar(&o.inbound, "inbound-port", 15006, "port of the inbound capture passthrough (injected sidecar)")
	fs.IntVar(&o.healthPort, "health-port", 15020, "port of the health endpoints")
	fs.IntVar(&o.statsPort, "stats-port", 15090, "port of the Prometheus metrics; 0: none")
	fs.IntVar(&o.statsPort, "metrics-port", 15090, "same as --stats-port")
	fs.StringVar(&o.adminAddr, "admin-address", "", "loopback host:port of the admin endpoints; empty: the bootstrap's admin, else "+admin.DefaultAddr)
	adminPort := fs.Int("admin-port", 0, "port of the admin endpoints on 127.0.0.1, instead of --admin-address")
	fs.DurationVar(&o.drain, "drain-timeout", 20*time.Second, "how long SIGTERM waits for connections in flight")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *adminPort != 0 {
		if o.adminAddr != "" {
			return nil, errors.New("--admin-port and --admin-address: give one")
		}
		o.adminAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(*adminPort))
	}
	return o, nil
}

func run(log *slog.Logger, level *slog.LevelVar, args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	probes, err := health.ParseAppProbes(os.Getenv("SKEIN_APP_PROBES"))
	if err != nil {
		return err
	}
	m, err := loadMode(o, os.Getenv)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	quit := make(chan struct{})
	var quitOnce sync.Once

	h := &health.Handler{Probes: probes}
	st := stats.New()
	var trimOnce sync.Once
	cfg := proxy.Config{
		ADS:    m.ads != nil,
		Stats:  st,
		Logger: log,
		OnReady: func(ready bool) {
			h.SetReady(ready)
			if ready {
				// The first config is applied: what parsing it left on
				// the heap goes back to the OS now, not minutes later.
				trimOnce.Do(func() { go debug.FreeOSMemory() })
			}
		},
		Quit: func() { quitOnce.Do(func() { close(quit) }) },
	}
	if sr := m.bootstrap.GetStaticResources(); sr != nil {
		cfg.Listeners, cfg.Clusters = sr.GetListeners(), sr.GetClusters()
	}
	if m.fallback {
		cfg.Fallback = &proxy.Fallback{OutboundPort: uint16(o.outbound), InboundPort: uint16(o.inbound)}
	}
	p, err := proxy.New(cfg)
	if err != nil {
		return err
	}
	p.SetBootstrap(m.bootstrap)

	servers, err := serve(log, level, o, m, h, st, p)
	if err != nil {
		p.Close()
		return err
	}
	if err := p.Start(); err != nil {
		p.Close()
		return err
	}

	xdsCtx, stopXDS := context.WithCancel(context.Background())
	xdsDone := make(chan struct{})
	if m.ads != nil {
		opts, err := xdsOptions(log, m)
		if err != nil {
			stopXDS()
			p.Close()
			return err
		}
		go func() {
			defer close(xdsDone)
			if err := xdsclient.Run(xdsCtx, opts, p); err != nil {
				log.Error("xDS client stopped", "err", err)
				cfg.Quit()
			}
		}()
	} else {
		close(xdsDone)
	}
	log.Info("skein-proxy started", m.summary(o)...)

	select {
	case <-ctx.Done():
		log.Info("draining: signal", "timeout", o.drain.String())
	case <-quit:
		log.Info("draining: quit", "timeout", o.drain.String())
	}
	stopXDS()
	<-xdsDone // no config change during the drain
	drainCtx, cancel := context.WithTimeout(context.Background(), o.drain)
	defer cancel()
	if err := p.Drain(drainCtx); err != nil {
		log.Warn("connections closed at the drain deadline", "err", err)
	}
	for _, s := range servers {
		_ = s.Close()
	}
	log.Info("skein-proxy stopped")
	return nil
}

// mode is how the proxy gets its config.
type mode struct {
	name      string // "bootstrap", "sidecar" or "passthrough"
	bootstrap *bootstrapv3.Bootstrap
	ads       *bootstrap.ADSTarget // nil: no control plane
	fallback  bool                 // capture passthrough until the first LDS
	tokenFile string               // "" sends no token
}

// loadMode picks the mode: -c's bootstrap; the injected sidecar's, from
// the environment, when SKEIN_XDS_ADDRESS is set; else the capture
// passthrough alone.
func loadMode(o *options, getenv func(string) string) (*mode, error) {
	m := &mode{tokenFile: o.tokenFile}
	switch {
	case o.configPath != "":
		m.name = "bootstrap"
		b, err := bootstrap.Load(o.configPath)
		if err != nil {
			return nil, err
		}
		m.bootstrap = b
	case getenv("SKEIN_XDS_ADDRESS") != "":
		m.name, m.fallback = "sidecar", true
		b, err := bootstrap.SidecarFromEnv(getenv).Bootstrap()
		if err != nil {
			return nil, err
		}
		m.bootstrap = b
		if m.tokenFile == "" {
			m.tokenFile = bootstrap.DefaultTokenFile
		}
	default:
		m.name, m.fallback = "passthrough", true
		return m, nil
	}
	if o.serviceNode != "" {
		if m.bootstrap.Node == nil {
			m.bootstrap.Node = new(corev3.Node)
		}
		m.bootstrap.Node.Id = o.serviceNode
	}
	if err := bootstrap.Check(m.bootstrap); err != nil {
		return nil, err
	}
	ads, err := bootstrap.ADS(m.bootstrap)
	if err != nil {
		return nil, err
	}
	m.ads = ads
	return m, nil
}

// summary is the config the proxy starts with, for the log.
func (m *mode) summary(o *options) []any {
	out := []any{"mode", m.name, "gomaxprocs", runtime.GOMAXPROCS(0), "health", o.healthPort, "stats", o.statsPort,
		"admin", adminAddr(o, m), "drainTimeout", o.drain.String()}
	if o.configPath != "" {
		out = append(out, "bootstrap", o.configPath)
	}
	if id := m.bootstrap.GetNode().GetId(); id != "" {
		out = append(out, "node", id)
	}
	if sr := m.bootstrap.GetStaticResources(); sr != nil {
		out = append(out, "staticListeners", len(sr.GetListeners()), "staticClusters", len(sr.GetClusters()))
	}
	if m.ads != nil {
		out = append(out, "xds", m.ads.Address, "delta", m.ads.Delta, "tokenFile", m.tokenFile)
	}
	if m.fallback {
		out = append(out, "outbound", o.outbound, "inbound", o.inbound)
	}
	return out
}

func adminAddr(o *options, m *mode) string {
	if o.adminAddr != "" {
		return o.adminAddr
	}
	if a := bootstrap.AdminAddress(m.bootstrap); a != "" {
		return a
	}
	return admin.DefaultAddr
}

// xdsOptions configure the ADS client from the bootstrap's target.
func xdsOptions(log *slog.Logger, m *mode) (xdsclient.Options, error) {
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if t := m.ads.ConnectTimeout; t > 0 {
		dial = append(dial, grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: t}))
	}
	opts := xdsclient.Options{
		Target:      m.ads.Address,
		DialOptions: dial,
		Node:        m.bootstrap.GetNode(),
		Delta:       m.ads.Delta,
		Logger:      log.With("component", "xds"),
		OnState: func(s xdsclient.State) {
			log.Info("xDS connection", "state", s.String(), "server", m.ads.Address)
		},
	}
	if m.ads.Metadata != nil {
		opts.Metadata = metadata.MD(m.ads.Metadata)
	}
	if m.tokenFile != "" {
		opts.Token = bootstrap.TokenFile(m.tokenFile)
	}
	return opts, nil
}

// serve binds the health, metrics and admin ports and serves them.
func serve(log *slog.Logger, level *slog.LevelVar, o *options, m *mode, h *health.Handler, st *stats.Stats, p *proxy.Proxy) ([]*http.Server, error) {
	var servers []*http.Server
	start := func(what string, ln net.Listener, handler http.Handler) {
		s := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, s)
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(what+" server stopped", "err", err)
			}
		}()
	}
	fail := func(err error) ([]*http.Server, error) {
		for _, s := range servers {
			_ = s.Close()
		}
		return nil, err
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(o.healthPort))
	if err != nil {
		return fail(fmt.Errorf("health listener: %w", err))
	}
	start("health", ln, h)
	if o.statsPort != 0 {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(o.statsPort))
		if err != nil {
			return fail(fmt.Errorf("stats listener: %w", err))
		}
		start("stats", ln, st.Handler())
	}
	ln, err = admin.Listen(adminAddr(o, m))
	if err != nil {
		return fail(fmt.Errorf("admin listener: %w", err))
	}
	start("admin", ln, &admin.Handler{Source: p, Stats: st.Gatherer(), Level: level})
	return servers, nil
}

// wait polls the proxy's readiness until it answers 200: the postStart hook
// of a classic sidecar, so that the kubelet starts the app only then.
func wait(args []string) error {
	fs := flag.NewFlagSet("skein-proxy wait", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:15020"+health.ReadyPath, "readiness URL")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait")
	if err := fs.Parse(args); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(*url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the proxy was not ready within %s (%s)", *timeout, *url)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

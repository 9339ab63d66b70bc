// Command skein-proxy is Skein's sidecar proxy. This first version forwards
// the TCP traffic skein-init captures, unchanged, to its original
// destination (outbound on 15001, inbound to the app on 15006), and serves
// the health port (15020): its own readiness and the app's rewritten
// probes. Routing, load balancing, mTLS and the rest arrive with its xDS
// configuration.
//
//	skein-proxy [flags]        run the proxy
//	skein-proxy wait [flags]   wait until the proxy in this pod is ready
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
	"strconv"
	"syscall"
	"time"

	"github.com/skeinmesh/skein/sidecar/capture"
	"github.com/skeinmesh/skein/sidecar/health"
	"github.com/skeinmesh/skein/sidecar/passthrough"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	var err error
	if len(os.Args) > 1 && os.Args[1] == "wait" {
		err = wait(os.Args[2:])
	} else {
		err = run(log, os.Args[1:])
	}
	if err != nil {
		log.Error("skein-proxy failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("skein-proxy", flag.ContinueOnError)
	outbound := fs.Int("outbound-port", 15001, "port of the outbound capture listener")
	inbound := fs.Int("inbound-port", 15006, "port of the inbound capture listener")
	healthPort := fs.Int("health-port", 15020, "port of the health endpoints")
	drain := fs.Duration("drain-timeout", 20*time.Second, "how long SIGTERM waits for connections in flight")
	if err := fs.Parse(args); err != nil {
		return err
	}
	probes, err := health.ParseAppProbes(os.Getenv("SKEIN_APP_PROBES"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	onError := func(err error) { log.Warn("connection dropped", "err", err) }
	out := &passthrough.Forwarder{Destination: capture.OriginalDst, Dial: passthrough.DialOutbound, OnError: onError}
	in := &passthrough.Forwarder{Destination: capture.OriginalDst, Dial: passthrough.DialInbound, OnError: onError}
	var listeners []net.Listener
	defer func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}()
	for _, l := range []struct {
		port int
		fwd  *passthrough.Forwarder
	}{{*outbound, out}, {*inbound, in}} {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(l.port))
		if err != nil {
			return fmt.Errorf("capture listener: %w", err)
		}
		listeners = append(listeners, ln)
		go func(f *passthrough.Forwarder) {
			if err := f.Serve(ln); err != nil {
				log.Error("capture listener stopped", "port", l.port, "err", err)
			}
		}(l.fwd)
	}

	h := &health.Handler{Probes: probes}
	healthSrv := &http.Server{Addr: ":" + strconv.Itoa(*healthPort), Handler: h, ReadHeaderTimeout: 5 * time.Second}
	healthLn, err := net.Listen("tcp", healthSrv.Addr)
	if err != nil {
		return fmt.Errorf("health listener: %w", err)
	}
	go func() {
		if err := healthSrv.Serve(healthLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health server stopped", "err", err)
		}
	}()
	h.SetReady(true)
	log.Info("skein-proxy ready", "outbound", *outbound, "inbound", *inbound, "health", *healthPort, "appProbes", len(probes))

	<-ctx.Done()
	log.Info("draining", "timeout", drain.String())
	h.SetReady(false)
	for _, ln := range listeners {
		ln.Close()
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	for _, f := range []*passthrough.Forwarder{out, in} {
		if err := f.Drain(drainCtx); err != nil {
			log.Warn("connections closed at the drain deadline", "err", err)
		}
	}
	_ = healthSrv.Shutdown(drainCtx)
	return nil
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

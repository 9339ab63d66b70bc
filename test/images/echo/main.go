// Command echo is the end-to-end tests' backend: an HTTP server that answers
// every request with a JSON description of it and of the pod that served it,
// and a gRPC server with the standard health service (grpc.health.v1) and an
// echo method, both with faults that a request asks for.
//
// HTTP, on -port ($PORT, 8080), HTTP/1.1 and cleartext HTTP/2:
//
//	GET /healthz                  200 "ok"
//	ANY /anything                 200 and the JSON echo (see echoReply)
//
// Faults, from a request header or the query:
//
//	x-echo-status: 503   ?status=503   answer with that status (and the echo)
//	x-echo-delay: 200ms  ?delay=200ms  wait that long first
//	x-echo-abort: true   ?abort=true   close the connection without an answer
//
// gRPC, on -grpc-port ($GRPC_PORT, 9090): grpc.health.v1.Health (service ""
// and skein.echo.v1.Echo) and the unary method /skein.echo.v1.Echo/Echo,
// which takes any google.protobuf.Struct and answers a Struct with the same
// fields as the HTTP echo. Faults from metadata: x-echo-grpc-status (a code
// number, such as 14 for UNAVAILABLE) and x-echo-delay.
//
// As a client (client.go), `echo call` and `echo load` call a service over
// HTTP/1.1, h2c or gRPC and print a JSON summary: answers by pod and
// status, failures with the proxy's x-skein-reason.
//
// The reply names the pod from $POD_NAME and $POD_NAMESPACE (set them with
// the downward API) and $VERSION, to tell subsets apart. SIGTERM stops both
// servers gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownTimeout bounds a graceful stop; requests still running then are cut.
const shutdownTimeout = 10 * time.Second

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "call" || os.Args[1] == "load") {
		os.Exit(clientMain(os.Args[1], os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	port := flag.String("port", envOr("PORT", "8080"), "HTTP port ($PORT)")
	grpcPort := flag.String("grpc-port", envOr("GRPC_PORT", "9090"), "gRPC port ($GRPC_PORT)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	httpLn, err := net.Listen("tcp", ":"+*port)
	if err != nil {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
	grpcLn, err := net.Listen("tcp", ":"+*grpcPort)
	if err != nil {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
	slog.Info("serving", "http", httpLn.Addr().String(), "grpc", grpcLn.Addr().String())
	if err := run(ctx, httpLn, grpcLn, identityFromEnv()); err != nil {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// identity is who answers: it goes into every reply.
type identity struct {
	Pod, Namespace, Version, Hostname string
}

func identityFromEnv() identity {
	host, _ := os.Hostname()
	return identity{Pod: os.Getenv("POD_NAME"), Namespace: os.Getenv("POD_NAMESPACE"), Version: os.Getenv("VERSION"), Hostname: host}
}

// run serves HTTP on httpLn and gRPC on grpcLn until ctx is done, then stops
// both gracefully; it returns an error only if serving failed.
func run(ctx context.Context, httpLn, grpcLn net.Listener, id identity) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	httpSrv := &http.Server{Handler: newHandler(id), ReadHeaderTimeout: 10 * time.Second, Protocols: &protocols}
	grpcSrv, health := newGRPCServer(id)

	errs := make(chan error, 2)
	go func() { errs <- httpSrv.Serve(httpLn) }()
	go func() { errs <- grpcSrv.Serve(grpcLn) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	health.Shutdown() // health checks answer NOT_SERVING while draining
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	stopped := make(chan struct{})
	go func() { grpcSrv.GracefulStop(); close(stopped) }()
	if serr := httpSrv.Shutdown(stopCtx); serr != nil && err == nil {
		err = serr
	}
	select {
	case <-stopped:
	case <-stopCtx.Done():
		grpcSrv.Stop()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

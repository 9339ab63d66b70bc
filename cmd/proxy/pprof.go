package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// SKEIN_PPROF_ADDRESS, when set to a loopback host:port, serves
// net/http/pprof there: for profiling the proxy under a benchmark
// (hack/bench-proxy). It is an environment variable rather than a flag so
// that nothing in the injected sidecar's command line can turn it on.
func init() {
	addr := os.Getenv("SKEIN_PPROF_ADDRESS")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		os.Stderr.WriteString("skein-proxy: SKEIN_PPROF_ADDRESS must be a loopback host:port; pprof not served\n")
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		os.Stderr.WriteString("skein-proxy: pprof: " + err.Error() + "\n")
		return
	}
	go http.Serve(ln, mux)
}

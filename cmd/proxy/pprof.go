//go:build pprof

package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// In a binary built with -tags pprof, SKEIN_PPROF_ADDRESS (a loopback
// host:port) serves net/http/pprof there: for profiling the proxy under a
// benchmark (hack/bench-proxy). A build tag, because net/http/pprof costs
// the default binary about 0.8 MB of RSS; an environment variable rather
// than a flag, so that nothing in a pod's command line turns it on.
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

// Command httputilproxy is the reference row of `make bench-proxy` and a
// stand-in for skein-proxy until it is assembled: the standard library's
// httputil.ReverseProxy behind an http.Server that speaks HTTP/1.1 and h2c
// on one port, configured from the same Envoy bootstrap (-c) as skein-proxy,
// of which it reads only the first listener's address and the endpoint of
// the cluster its first route names.
//
//	httputilproxy -c bootstrap.yaml
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/skeinmesh/skein/hack/bench-proxy/envoyboot"
)

func main() {
	config := flag.String("c", "", "Envoy v3 bootstrap (YAML or JSON)")
	flag.Parse()
	if err := run(*config); err != nil {
		log.Fatal("httputilproxy: ", err)
	}
}

func run(config string) error {
	data, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	listen, upstream, err := addresses(data)
	if err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	target := &url.URL{Scheme: "http", Host: upstream}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = r.In.Host },
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: 64, // as nginx's upstream keepalive 64
			IdleConnTimeout:     5 * time.Minute,
			DisableCompression:  true,
		},
	}
	srv := &http.Server{Handler: rp, Protocols: new(http.Protocols), ReadHeaderTimeout: time.Minute}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// addresses returns the first listener's address and the first endpoint of
// the cluster that the first route of its connection manager names.
func addresses(data []byte) (listen, upstream string, err error) {
	b, err := envoyboot.Parse(data)
	if err != nil {
		return "", "", err
	}
	ls := b.GetStaticResources().GetListeners()
	if len(ls) == 0 || len(ls[0].GetFilterChains()) == 0 || len(ls[0].GetFilterChains()[0].GetFilters()) == 0 {
		return "", "", errors.New("no listener with a filter")
	}
	sa := ls[0].GetAddress().GetSocketAddress()
	listen = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
	hcm := &hcmv3.HttpConnectionManager{}
	if err := ls[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		return "", "", fmt.Errorf("listener %s: %w", ls[0].GetName(), err)
	}
	vhs := hcm.GetRouteConfig().GetVirtualHosts()
	if len(vhs) == 0 || len(vhs[0].GetRoutes()) == 0 {
		return "", "", errors.New("no inline route")
	}
	name := vhs[0].GetRoutes()[0].GetRoute().GetCluster()
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != name {
			continue
		}
		for _, e := range c.GetLoadAssignment().GetEndpoints() {
			for _, lb := range e.GetLbEndpoints() {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				return listen, net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))), nil
			}
		}
	}
	return "", "", fmt.Errorf("no endpoint for cluster %q", name)
}

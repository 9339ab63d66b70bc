package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestXDS runs skein-proxy as an injected sidecar against a real
// go-control-plane ADS server: before any config it serves the capture
// fallback and is not ready; with the snapshot it is ready and traffic
// reaches the backend through tcp_proxy and the HCM on the fallback's own
// port; a listener it cannot compile is NACKed with a message naming it
// while the old config keeps serving; with the server gone traffic still
// flows; a restarted server's new snapshot is picked up.
func TestXDS(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	srv := startXDS(t, "")
	m := mesh{outboundPort: freePort(t), httpPort: freePort(t), backends: []*backend{a}}
	p := startSidecar(t, srv.addr, m.outboundPort)

	// Before the first config: the fallback is bound, the proxy not ready.
	eventually(t, 10*time.Second, func() string {
		if msg := p.exited(); msg != "" {
			return msg
		}
		if code, _ := get(p.admin + "/ready"); code != 503 {
			return fmt.Sprintf("admin /ready %d before any config, want 503", code)
		}
		c, err := net.Dial("tcp", "127.0.0.1:"+m.outboundPort)
		if err != nil {
			return "the capture fallback is not listening: " + err.Error()
		}
		c.Close()
		return ""
	})
	if code, _ := get(p.health + "/healthz/ready"); code != 503 {
		t.Errorf("/healthz/ready %d before any config, want 503", code)
	}
	if _, dump := get(p.admin + "/config_dump"); !strings.Contains(compact(t, dump), `"name":"virtualOutbound"`) {
		t.Errorf("the config dump does not show the fallback's virtualOutbound:\n%s", dump)
	}

	srv.set(m.snapshot(t, "1"))
	p.waitReady()
	through := func(port, want string) string {
		if code, body := get("http://127.0.0.1:" + port + "/"); code != 200 || body != want {
			return fmt.Sprintf("through port %s: %d %q, want 200 %q", port, code, body, want)
		}
		return ""
	}
	eventually(t, 5*time.Second, func() string { return through(m.outboundPort, "a") + through(m.httpPort, "a") })
	_, dump := get(p.admin + "/config_dump")
	if d := compact(t, dump); !strings.Contains(d, `"dynamic_listeners":[{"name":"http"`) || !strings.Contains(d, `{"name":"virtualOutbound","active_state"`) ||
		strings.Contains(d, "static_listeners") || !strings.Contains(d, `"dynamic_route_configs"`) {
		t.Errorf("the config dump does not show the dynamic listeners (and no static ones):\n%s", d)
	}
	// The xDS version reaches the dump and the metrics.
	if d := compact(t, dump); !strings.Contains(d, `"version_info":"1"`) {
		t.Errorf("the config dump shows no version_info of snapshot 1:\n%s", d)
	}
	if _, metrics := get(p.stats + "/stats/prometheus"); !strings.Contains(metrics, `skein_proxy_config_version_info{type="lds",version="1"} 1`) {
		t.Errorf("config_version_info does not show LDS version 1:\n%s", metrics)
	}
	if _, clusters := get(p.admin + "/clusters"); !strings.Contains(clusters, cluster+"::"+a.addr+"::") {
		t.Errorf("/clusters does not show %s:\n%s", a.addr, clusters)
	}

	// A listener with a filter the proxy does not know: NACKed by name,
	// the rest keeps serving.
	bad := m
	bad.extraListeners = []types.Resource{&listenerv3.Listener{
		Name:    "bad-listener",
		Address: sockAddr("127.0.0.1", 1),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.mystery", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, wrapperspb.String("?"))},
		}}}},
	}}
	srv.set(bad.snapshot(t, "2"))
	eventually(t, 10*time.Second, func() string {
		for _, n := range srv.seenNACKs() {
			if strings.Contains(n, "Listener") && strings.Contains(n, `listener "bad-listener"`) && strings.Contains(n, "filter") {
				return ""
			}
		}
		return fmt.Sprintf("no NACK naming the listener and its filter; NACKs: %q", srv.seenNACKs())
	})
	if msg := through(m.outboundPort, "a") + through(m.httpPort, "a"); msg != "" {
		t.Errorf("after the NACK: %s", msg)
	}
	if code, _ := get(p.admin + "/ready"); code != 200 {
		t.Errorf("a NACK made the proxy unready: %d", code)
	}

	// The server goes away: the last good config keeps serving.
	addr := srv.addr
	srv.stop()
	time.Sleep(300 * time.Millisecond)
	for range 3 {
		if msg := through(m.outboundPort, "a") + through(m.httpPort, "a"); msg != "" {
			t.Fatalf("with the control plane gone: %s", msg)
		}
	}

	// It comes back with a new snapshot: the endpoints move to b.
	srv = startXDS(t, addr)
	m.backends = []*backend{b}
	srv.set(m.snapshot(t, "3"))
	eventually(t, 30*time.Second, func() string { return through(m.outboundPort, "b") + through(m.httpPort, "b") })
	if srv.refused != 0 {
		t.Errorf("%d streams came without the pod's token", srv.refused)
	}
	p.stop(10 * time.Second)
}

// TestBootstrapADS runs skein-proxy from an Envoy bootstrap whose
// dynamic_resources name a static cluster for ADS, state of the world this
// time, with the token from --xds-token-file: its listeners, routes,
// clusters and endpoints arrive and traffic flows.
func TestBootstrapADS(t *testing.T) {
	be := startBackend(t, "sotw")
	srv := startXDS(t, "")
	m := mesh{outboundPort: freePort(t), httpPort: freePort(t), backends: []*backend{be}}
	srv.set(m.snapshot(t, "1"))
	host, port, _ := net.SplitHostPort(srv.addr)
	ap := freePort(t)
	cfg := lines(
		"node: {id: \""+nodeID+"\", cluster: web}",
		"admin: {address: {socket_address: {address: 127.0.0.1, port_value: "+ap+"}}}",
		"dynamic_resources:",
		"  ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}",
		"  lds_config: {ads: {}, resource_api_version: V3}",
		"  cds_config: {ads: {}, resource_api_version: V3}",
		"static_resources:",
		"  clusters:",
		"  - name: xds",
		"    type: STATIC",
		"    connect_timeout: 1s",
		"    typed_extension_protocol_options:",
		"      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:",
		`        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
		"        explicit_http_config: {http2_protocol_options: {}}",
		"    load_assignment:",
		"      cluster_name: xds",
		"      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: "+host+", port_value: "+port+"}}}}]}]",
	)
	dir := t.TempDir()
	path, token := filepath.Join(dir, "bootstrap.yaml"), filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(token, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, nil, "-c", path, "--xds-token-file", token)
	p.admin = "http://127.0.0.1:" + ap
	p.waitReady()
	for _, port := range []string{m.outboundPort, m.httpPort} {
		if code, body := get("http://127.0.0.1:" + port + "/"); code != 200 || body != "sotw" {
			t.Errorf("through port %s: %d %q", port, code, body)
		}
	}
	if _, clusters := get(p.admin + "/clusters"); !strings.Contains(clusters, "xds::"+srv.addr+"::") {
		t.Errorf("/clusters does not show the static xds cluster:\n%s", clusters)
	}
	p.stop(10 * time.Second)
}

package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/skeinmesh/skein/sidecar/http1"
	"github.com/skeinmesh/skein/sidecar/lb"
)

// lbEndpoint is an lb_endpoint at host:port.
func lbEndpoint(host string, port int) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
		}}},
	}}}
}

// assignment is a ClusterLoadAssignment of name with one priority-0
// locality holding addrs ("ip:port").
func assignment(t testing.TB, name string, addrs ...string) *endpointv3.ClusterLoadAssignment {
	t.Helper()
	lle := &endpointv3.LocalityLbEndpoints{}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		lle.LbEndpoints = append(lle.LbEndpoints, lbEndpoint(host, p))
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{lle}}
}

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		}},
		ConnectTimeout: durationpb.New(time.Second),
	}
}

func staticCluster(t testing.TB, name string, addrs ...string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment:       assignment(t, name, addrs...),
		ConnectTimeout:       durationpb.New(time.Second),
	}
}

func mustCompile(t testing.TB, pb *clusterv3.Cluster) *Cluster {
	t.Helper()
	c, err := Compile(pb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// h1Backend is a net/http server on 127.0.0.1 answering "ok" with its
// address in X-Backend; it counts the connections it accepted.
type h1Backend struct {
	addr   string
	srv    *http.Server
	conns  atomic.Int64
	closed atomic.Int64
	reqs   atomic.Int64
}

func startH1(t testing.TB) *h1Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &h1Backend{addr: ln.Addr().String()}
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.reqs.Add(1)
			w.Header().Set("Content-Length", "2")
			w.Header().Set("X-Backend", b.addr)
			io.WriteString(w, "ok")
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				b.conns.Add(1)
			case http.StateClosed:
				b.closed.Add(1)
			}
		},
	}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

// get1 runs one GET over an HTTP/1.1 connection from c's pool to h and
// returns the backend that answered.
func get1(ctx context.Context, c *Cluster, h *lb.Host) (string, error) {
	cn, err := c.HTTP1(ctx, h)
	if err != nil {
		return "", err
	}
	var req http1.RequestHead
	var resp http1.ResponseHead
	if err := exchange1(cn, &req, &resp); err != nil {
		cn.Release(false)
		return "", err
	}
	backend := string(resp.Header.Get("X-Backend"))
	cn.Release(!resp.Close)
	return backend, nil
}

func exchange1(cn *Conn1, req *http1.RequestHead, resp *http1.ResponseHead) error {
	if _, err := io.WriteString(cn.W, "GET / HTTP/1.1\r\nHost: upstream\r\n\r\n"); err != nil {
		return err
	}
	if err := cn.W.Flush(); err != nil {
		return err
	}
	if err := http1.ParseResponseHead(cn.R, resp, []byte("GET")); err != nil {
		return err
	}
	if resp.Body.Kind != http1.ContentLength {
		return io.ErrUnexpectedEOF
	}
	_, err := io.CopyN(io.Discard, cn.R, resp.Body.Length)
	return err
}

func wrapU32(v uint32) *wrapperspb.UInt32Value { return wrapperspb.UInt32(v) }

func splitHostPort(a string) (string, string, error) { return net.SplitHostPort(a) }

package listener

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// answerType is a test-only terminal filter: its typed_config is a
// StringValue, and it reads one line and answers "<value> <protocol>
// <line>", so that a test sees which chain (of which config) served a
// connection and what detection found.
var answerType = "type.googleapis.com/google.protobuf.StringValue"

func answerFactory(f *listenerv3.Filter) (Filter, error) {
	var v wrapperspb.StringValue
	if err := f.GetTypedConfig().UnmarshalTo(&v); err != nil {
		return Filter{}, err
	}
	return Filter{Terminal: ConnHandlerFunc(func(_ context.Context, c net.Conn, info *ConnInfo) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%s %s %s\n", v.GetValue(), info.Protocol, strings.TrimSpace(line))
	})}, nil
}

// fakeHCM stands in for the assembly's HCM factory: an answer filter named
// after the HCM's stat_prefix. The listener detects the protocol for it
// because of its type URL.
func fakeHCM(f *listenerv3.Filter) (Filter, error) {
	return Filter{Terminal: ConnHandlerFunc(func(_ context.Context, c net.Conn, info *ConnInfo) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		fmt.Fprintf(c, "hcm %s %s\n", info.Protocol, strings.TrimSpace(line))
	})}, nil
}

// passRBAC stands in for the assembly's network RBAC factory (enforcement
// comes with the authorization issue): a network filter that passes on.
func passRBAC(*listenerv3.Filter) (Filter, error) {
	return Filter{Network: wrapFunc(func(next ConnHandler) ConnHandler { return next })}, nil
}

type wrapFunc func(next ConnHandler) ConnHandler

func (f wrapFunc) Wrap(next ConnHandler) ConnHandler { return f(next) }

var _ NetworkFilter = wrapFunc(nil)

// testDialer connects clusters to addresses: PassthroughCluster to the
// connection's destination, a cluster not in the map fails (like
// BlackHoleCluster).
type testDialer struct {
	mu       sync.Mutex
	clusters map[string]netip.AddrPort
	dials    []string // clusters asked for, in order
	failures int      // fail this many dials first
}

func (d *testDialer) DialCluster(ctx context.Context, cluster string, info *ConnInfo) (net.Conn, error) {
	d.mu.Lock()
	d.dials = append(d.dials, cluster)
	addr, ok := d.clusters[cluster]
	fail := d.failures > 0
	if fail {
		d.failures--
	}
	d.mu.Unlock()
	if fail {
		return nil, errors.New("refused by the test")
	}
	if cluster == "PassthroughCluster" {
		addr, ok = info.Destination, true
	}
	if !ok {
		return nil, fmt.Errorf("cluster %q has no hosts", cluster)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr.String())
}

func (d *testDialer) asked() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.dials...)
}

var _ Dialer = (*testDialer)(nil)

func mustAny(t tb, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tcpProxyFilter(t tb, cfg *tcpproxyv3.TcpProxy) *listenerv3.Filter {
	return &listenerv3.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, cfg)}}
}

func toCluster(t tb, cluster string) *listenerv3.Filter {
	return tcpProxyFilter(t, &tcpproxyv3.TcpProxy{StatPrefix: cluster, ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster}})
}

func answer(t tb, value string) *listenerv3.Filter {
	return &listenerv3.Filter{Name: "answer", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, wrapperspb.String(value))}}
}

func hcm(t tb) *listenerv3.Filter {
	// Any HCM config: the fake factory does not read it.
	return &listenerv3.Filter{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{
		TypedConfig: &anypb.Any{TypeUrl: HTTPConnectionManagerType}}}
}

func socketAddr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

// chain builds a filter chain named name with a match and filters.
func chain(name string, m *listenerv3.FilterChainMatch, filters ...*listenerv3.Filter) *listenerv3.FilterChain {
	return &listenerv3.FilterChain{Name: name, FilterChainMatch: m, Filters: filters}
}

func cidr(p string) *corev3.CidrRange {
	pr := netip.MustParsePrefix(p)
	return &corev3.CidrRange{AddressPrefix: pr.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(pr.Bits()))}
}

func port(p uint32) *wrapperspb.UInt32Value { return wrapperspb.UInt32(p) }

// testFilters are the factories tests compile with.
func testFilters(d Dialer) map[string]FilterFactory {
	return map[string]FilterFactory{
		TCPProxyType:              NewTCPProxyFactory(d, nil),
		HTTPConnectionManagerType: fakeHCM,
		NetworkRBACType:           passRBAC,
		answerType:                answerFactory,
	}
}

// newManager returns a Manager with the test factories; it is closed when
// t ends.
func newManager(t *testing.T, d Dialer, cfg Config) *Manager {
	t.Helper()
	cfg.Dialer = d
	cfg.Filters = map[string]FilterFactory{HTTPConnectionManagerType: fakeHCM, NetworkRBACType: passRBAC, answerType: answerFactory}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// backend listens on 127.0.0.1 and serves every connection with serve.
func backend(t *testing.T, serve func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// counting reads to the end of stream, then answers with the byte count:
// it answers only if the proxy passed the client's half-close on.
func counting(c net.Conn) {
	n, _ := io.Copy(io.Discard, c)
	fmt.Fprintf(c, "%d bytes", n)
}

// echo copies back what it reads.
func echo(c net.Conn) { _, _ = io.Copy(c, c) }

func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// ask writes line to c and returns the line answered.
func ask(t *testing.T, c net.Conn, line string) string {
	t.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read the answer to %q: %v (got %q)", line, err, got)
	}
	return strings.TrimSpace(got)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tb is what the config builders need of a testing.TB; the netns helper
// process, which has no test, passes panicTB.
type tb interface {
	Helper()
	Fatal(args ...any)
}

type panicTB struct{}

func (panicTB) Helper()           {}
func (panicTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

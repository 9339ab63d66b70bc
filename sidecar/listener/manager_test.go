package listener

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// plain is a listener on a free port of 127.0.0.1 with one chain.
func plain(name string, filters ...*listenerv3.Filter) *listenerv3.Listener {
	return &listenerv3.Listener{Name: name, Address: socketAddr("127.0.0.1", 0),
		FilterChains: []*listenerv3.FilterChain{chain("", nil, filters...)}}
}

func TestTCPProxyToABackendWithHalfClose(t *testing.T) {
	d := &testDialer{clusters: map[string]netip.AddrPort{"db": backend(t, counting)}}
	m := newManager(t, d, Config{})
	if err := m.Update([]*listenerv3.Listener{plain("db", toCluster(t, "db"))}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, m.Addr("db"))
	payload := bytes.Repeat([]byte("skein"), 200_000) // 1 MB
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite() // the backend answers only after our end of stream
	answer, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d bytes", len(payload)); string(answer) != want {
		t.Errorf("backend answered %q, want %q", answer, want)
	}
	st := m.Stats()["db"]
	waitFor(t, "the connection to end", func() bool { return st.Active.Load() == 0 })
	if st.Accepted.Load() != 1 || st.Chains()["filter_chains[0]"] != 1 {
		t.Errorf("accepted %d, chains %v; want 1 connection on filter_chains[0]", st.Accepted.Load(), st.Chains())
	}
}

func TestBlackHoleClosesTheConnection(t *testing.T) {
	errs := make(chan error, 1)
	d := &testDialer{}
	m, err := NewManager(Config{Dialer: d, OnError: func(err error) { errs <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Update([]*listenerv3.Listener{plain("out", toCluster(t, "BlackHoleCluster"))}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, m.Addr("out"))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("read %d, %v; want the connection closed", n, err)
	}
	if err := <-errs; !strings.Contains(err.Error(), `cluster "BlackHoleCluster"`) {
		t.Errorf("reported %v", err)
	}
}

func TestMaxConnectAttempts(t *testing.T) {
	up := backend(t, echo)
	for _, tc := range []struct {
		name     string
		attempts uint32 // max_connect_attempts
		failures int    // dials that fail first
		works    bool
	}{
		{"third attempt of three connects", 3, 2, true},
		{"two attempts are not enough", 2, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &testDialer{clusters: map[string]netip.AddrPort{"up": up}, failures: tc.failures}
			m := newManager(t, d, Config{})
			f := tcpProxyFilter(t, &tcpproxyv3.TcpProxy{ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "up"},
				MaxConnectAttempts: wrapperspb.UInt32(tc.attempts)})
			if err := m.Update([]*listenerv3.Listener{plain("l", f)}); err != nil {
				t.Fatal(err)
			}
			c := dial(t, m.Addr("l"))
			io.WriteString(c, "ping")
			got := make([]byte, 4)
			_, err := io.ReadFull(c, got)
			if works := err == nil && string(got) == "ping"; works != tc.works {
				t.Errorf("echo %q, %v; want working %v", got, err, tc.works)
			}
			if n := len(d.asked()); n != int(tc.attempts) {
				t.Errorf("%d dials, want %d", n, tc.attempts)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	d := &testDialer{clusters: map[string]netip.AddrPort{"up": backend(t, echo)}}
	m := newManager(t, d, Config{})
	const idle = 300 * time.Millisecond
	f := tcpProxyFilter(t, &tcpproxyv3.TcpProxy{ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "up"},
		IdleTimeout: durationpb.New(idle)})
	if err := m.Update([]*listenerv3.Listener{plain("l", f)}); err != nil {
		t.Fatal(err)
	}
	// Busy for three idle periods: stays open.
	busy := dial(t, m.Addr("l"))
	buf := make([]byte, 4)
	for range 9 {
		io.WriteString(busy, "ping")
		if _, err := io.ReadFull(busy, buf); err != nil {
			t.Fatalf("a busy connection was closed: %v", err)
		}
		time.Sleep(idle / 3)
	}
	// Idle: closed after the timeout, within a quarter of it (and slack).
	start := time.Now()
	if _, err := busy.Read(buf); err == nil {
		t.Fatal("read data from an idle connection")
	}
	if d := time.Since(start); d < idle-idle/3 || d > idle+idle/4+500*time.Millisecond {
		t.Errorf("an idle connection was closed after %v, want about %v", d, idle)
	}
}

// TestUpdateKeepsTheSocket: an update that keeps a listener's address
// keeps its socket: no connection is refused during many swaps, a new
// connection gets the new chains, one accepted before keeps the old ones.
func TestUpdateKeepsTheSocket(t *testing.T) {
	m := newManager(t, &testDialer{}, Config{})
	version := func(v string) []*listenerv3.Listener {
		return []*listenerv3.Listener{plain("l", answer(t, v))}
	}
	if err := m.Update(version("v1")); err != nil {
		t.Fatal(err)
	}
	addr := m.Addr("l")
	old := dial(t, addr)
	st := m.Stats()["l"]
	waitFor(t, "the first connection to be accepted", func() bool { return st.Accepted.Load() == 1 })

	// Swap back and forth while connections keep coming.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var dialed int
	var dialErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
			if err != nil {
				dialErr = err
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "hi\n")
			got, err := io.ReadAll(c)
			c.Close()
			if s := string(got); err != nil || (s != "v1 unknown hi\n" && s != "v2 unknown hi\n") {
				dialErr = fmt.Errorf("a connection during the swaps got %q, %v", got, err)
				return
			}
			dialed++
		}
	}()
	for i := range 20 {
		if err := m.Update(version([]string{"v2", "v1"}[i%2])); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := m.Update(version("v2")); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if dialErr != nil || dialed == 0 {
		t.Fatalf("%d connections during the swaps, then %v", dialed, dialErr)
	}
	if got := m.Addr("l"); got.String() != addr.String() {
		t.Errorf("the listener moved from %s to %s: its socket was not kept", addr, got)
	}
	if got := ask(t, dial(t, addr), "new"); got != "v2 unknown new" {
		t.Errorf("a new connection got %q, want the new config's answer", got)
	}
	if got := ask(t, old, "old"); got != "v1 unknown old" {
		t.Errorf("the connection accepted before the update got %q, want the old config's answer", got)
	}
}

// TestRemovedListenerStopsAccepting: a removed listener's socket is closed
// at once, its open connection finishes, and Drain waits for it.
func TestRemovedListenerStopsAccepting(t *testing.T) {
	m := newManager(t, &testDialer{}, Config{})
	if err := m.Update([]*listenerv3.Listener{plain("a", answer(t, "a")), plain("b", answer(t, "b"))}); err != nil {
		t.Fatal(err)
	}
	addrA := m.Addr("a")
	open := dial(t, addrA)
	waitFor(t, "the connection to be accepted", func() bool { return m.Stats()["a"].Accepted.Load() == 1 })
	if err := m.Update([]*listenerv3.Listener{plain("b", answer(t, "b"))}); err != nil {
		t.Fatal(err)
	}
	if m.Addr("a") != nil || m.Stats()["a"] != nil {
		t.Error("listener a is still there")
	}
	if c, err := net.DialTimeout("tcp", addrA.String(), 2*time.Second); err == nil {
		c.Close()
		t.Error("the removed listener still accepts connections")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial the removed listener: %v, want connection refused", err)
	}
	if got := ask(t, dial(t, m.Addr("b")), "x"); got != "b unknown x" {
		t.Errorf("listener b answered %q", got)
	}

	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		drained <- m.Drain(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a connection open", err)
	default:
	}
	if got := ask(t, open, "still here"); got != "a unknown still here" {
		t.Errorf("the open connection of the removed listener got %q", got)
	}
	if err := <-drained; err != nil {
		t.Errorf("Drain = %v once the connection ended", err)
	}
	if err := m.Update([]*listenerv3.Listener{plain("b", answer(t, "b"))}); err == nil {
		t.Error("Update after Drain succeeded")
	}
}

func TestDrainDeadlineClosesWhatIsLeft(t *testing.T) {
	d := &testDialer{clusters: map[string]netip.AddrPort{"up": backend(t, echo)}}
	m := newManager(t, d, Config{})
	if err := m.Update([]*listenerv3.Listener{plain("l", toCluster(t, "up"))}); err != nil {
		t.Fatal(err)
	}
	stuck := dial(t, m.Addr("l"))
	io.WriteString(stuck, "ping")
	if _, err := io.ReadFull(stuck, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := m.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain with a connection that never ends = %v, want the deadline", err)
	}
	if _, err := io.ReadAll(stuck); err != nil {
		t.Errorf("the connection left at the deadline was not closed: %v", err)
	}
	if n := m.Stats()["l"].Active.Load(); n != 0 {
		t.Errorf("%d connections still active after the drain", n)
	}
}

// TestFailedUpdateChangesNothing: a compile error or a bind error leaves
// the running listeners as they were and binds nothing.
func TestFailedUpdateChangesNothing(t *testing.T) {
	m := newManager(t, &testDialer{}, Config{})
	if err := m.Update([]*listenerv3.Listener{plain("l", answer(t, "v1"))}); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := uint32(busy.Addr().(*net.TCPAddr).Port)
	free := &listenerv3.Listener{Name: "new", Address: socketAddr("127.0.0.1", 0),
		FilterChains: []*listenerv3.FilterChain{chain("", nil, answer(t, "new"))}}
	taken := &listenerv3.Listener{Name: "taken", Address: socketAddr("127.0.0.1", busyPort),
		FilterChains: []*listenerv3.FilterChain{chain("", nil, answer(t, "taken"))}}
	bad := plain("bad", answer(t, "x"))
	bad.FilterChains[0].FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: []string{"x"}}
	for _, tc := range []struct {
		name string
		ls   []*listenerv3.Listener
		want string // in the error
	}{
		{"bind error", []*listenerv3.Listener{plain("l", answer(t, "v2")), free, taken}, `listener "taken": address.socket_address: listen tcp4 127.0.0.1:`},
		{"compile error", []*listenerv3.Listener{plain("l", answer(t, "v2")), free, bad}, `listener "bad": filter_chains[0].filter_chain_match.server_names`},
		{"two listeners, one name", []*listenerv3.Listener{plain("l", answer(t, "v2")), plain("l", answer(t, "v3"))}, `listener "l": defined twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Update(tc.ls)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Update = %v, want an error with %q", err, tc.want)
			}
			if m.Addr("new") != nil {
				t.Error("the new listener of a failed update is bound")
			}
			if got := ask(t, dial(t, m.Addr("l")), "x"); got != "v1 unknown x" {
				t.Errorf("after a failed update, l answered %q, want its old config", got)
			}
		})
	}
}

func TestAPIListenersAreSkipped(t *testing.T) {
	m := newManager(t, &testDialer{}, Config{})
	api := &listenerv3.Listener{Name: "web.shop.svc.cluster.local:80", ApiListener: &listenerv3.ApiListener{}}
	if err := m.Update([]*listenerv3.Listener{api, plain("l", answer(t, "v1"))}); err != nil {
		t.Fatal(err)
	}
	if m.Addr("web.shop.svc.cluster.local:80") != nil || m.Addr("l") == nil {
		t.Error("the API listener was bound, or the other one was not")
	}
}

// gateType is a test-only network filter: its typed_config is a BoolValue;
// it writes "gate:<value>" and passes the connection on only when true.
const gateType = "type.googleapis.com/google.protobuf.BoolValue"

func gateFactory(f *listenerv3.Filter) (Filter, error) {
	var v wrapperspb.BoolValue
	if err := f.GetTypedConfig().UnmarshalTo(&v); err != nil {
		return Filter{}, err
	}
	return Filter{Network: wrapFunc(func(next ConnHandler) ConnHandler {
		return ConnHandlerFunc(func(ctx context.Context, c net.Conn, info *ConnInfo) {
			fmt.Fprintf(c, "gate:%v\n", v.GetValue())
			if v.GetValue() {
				next.ServeConn(ctx, c, info)
			}
		})
	})}, nil
}

// TestNetworkFiltersRunBeforeTheTerminalOne: filters run in order, each
// before the next, and one may refuse the connection.
func TestNetworkFiltersRunBeforeTheTerminalOne(t *testing.T) {
	m, err := NewManager(Config{Dialer: &testDialer{}, Filters: map[string]FilterFactory{gateType: gateFactory, answerType: answerFactory}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	gate := func(v bool) *listenerv3.Filter {
		return &listenerv3.Filter{Name: "gate", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, wrapperspb.Bool(v))}}
	}
	if err := m.Update([]*listenerv3.Listener{
		plain("open", gate(true), gate(true), answer(t, "served")),
		plain("closed", gate(true), gate(false), answer(t, "served")),
	}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"open":   "gate:true\ngate:true\nserved unknown hi\n",
		"closed": "gate:true\ngate:false\n",
	} {
		c := dial(t, m.Addr(name))
		if name == "open" { // the closed one would be reset for closing with unread bytes
			io.WriteString(c, "hi\n")
		}
		got, err := io.ReadAll(c)
		if err != nil || string(got) != want {
			t.Errorf("listener %s: got %q, %v; want %q", name, got, err, want)
		}
	}
}

// TestIPv6Addresses: "::1" listens on IPv6; "::" with ipv4_compat also
// takes IPv4 connections, without it only IPv6 ones (Envoy's rule).
func TestIPv6Addresses(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("skipped: no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	m := newManager(t, &testDialer{}, Config{})
	compat := &listenerv3.Listener{Name: "compat", Address: socketAddr("::", 0),
		FilterChains: []*listenerv3.FilterChain{chain("", nil, answer(t, "compat"))}}
	compat.Address.GetSocketAddress().Ipv4Compat = true
	v6only := &listenerv3.Listener{Name: "v6only", Address: socketAddr("::", 0),
		FilterChains: []*listenerv3.FilterChain{chain("", nil, answer(t, "v6only"))}}
	loop6 := &listenerv3.Listener{Name: "loop6", Address: socketAddr("::1", 0),
		FilterChains: []*listenerv3.FilterChain{chain("", nil, answer(t, "loop6"))}}
	if err := m.Update([]*listenerv3.Listener{loop6, compat, v6only}); err != nil {
		t.Fatal(err)
	}
	portOf := func(name string) string { return strconv.Itoa(m.Addr(name).(*net.TCPAddr).Port) }
	if got := ask(t, dial(t, m.Addr("loop6")), "x"); got != "loop6 unknown x" {
		t.Errorf("::1 answered %q", got)
	}
	for _, tc := range []struct {
		name, addr string
		works      bool
	}{
		{"ipv4_compat takes IPv4", "127.0.0.1:" + portOf("compat"), true},
		{"ipv4_compat takes IPv6", "[::1]:" + portOf("compat"), true},
		{"without ipv4_compat, IPv6 only", "127.0.0.1:" + portOf("v6only"), false},
		{"without ipv4_compat, IPv6", "[::1]:" + portOf("v6only"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", tc.addr, 2*time.Second)
			if err == nil {
				defer c.Close()
			}
			if (err == nil) != tc.works {
				t.Errorf("dial %s: %v, want working %v", tc.addr, err, tc.works)
			}
		})
	}
}

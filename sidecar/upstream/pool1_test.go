package upstream

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestHTTP1KeepAlive: 100 sequential requests to a real HTTP/1.1 server
// take one connection.
func TestHTTP1KeepAlive(t *testing.T) {
	b := startH1(t)
	c := mustCompile(t, staticCluster(t, "web", b.addr))
	ctx := context.Background()
	for i := range 100 {
		h, err := c.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := get1(ctx, c, h); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := b.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections for 100 requests, want 1", n)
	}
	if n, r := c.Stats().UpstreamCxTotal.Load(), c.Stats().UpstreamCxReused.Load(); n != 1 || r != 99 {
		t.Errorf("dialled %d, reused %d; want 1 and 99", n, r)
	}
}

// TestHTTP1StaleConnection: the server closes the idle connection; the
// next request notices before writing and dials a new one, and succeeds.
func TestHTTP1StaleConnection(t *testing.T) {
	b := startH1(t)
	c := mustCompile(t, staticCluster(t, "web", b.addr))
	h, _ := c.Pick(nil)
	ctx := context.Background()
	if _, err := get1(ctx, c, h); err != nil {
		t.Fatal(err)
	}
	b.srv.SetKeepAlivesEnabled(false) // closes the idle connection
	for deadline := time.Now().Add(5 * time.Second); b.closed.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("server did not close the idle connection")
		}
	}
	b.srv.SetKeepAlivesEnabled(true)
	time.Sleep(20 * time.Millisecond) // let the FIN arrive
	if _, err := get1(ctx, c, h); err != nil {
		t.Fatalf("request after the server closed the idle connection: %v", err)
	}
	if s := c.Stats().UpstreamCxStale.Load(); s != 1 {
		t.Errorf("stale connections seen %d, want 1", s)
	}
	if n := b.conns.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
}

// freePort returns a 127.0.0.1 address nothing listens on.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestConnectRefused: a port nothing listens on fails fast with
// ErrConnectFailure, whatever the connect timeout.
func TestConnectRefused(t *testing.T) {
	pb := staticCluster(t, "web", freePort(t))
	pb.ConnectTimeout = durationpb.New(10 * time.Second)
	c := mustCompile(t, pb)
	h, _ := c.Pick(nil)
	start := time.Now()
	_, err := c.HTTP1(context.Background(), h)
	if !errors.Is(err, ErrConnectFailure) || errors.Is(err, ErrConnectTimeout) {
		t.Fatalf("error %v, want a connection failure", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v", d)
	}
	var ue *Error
	if !errors.As(err, &ue) || ue.Status != 503 || ue.Host != h.Address {
		t.Errorf("error %#v: want status 503 and the host", err)
	}
	if c.Stats().UpstreamCxConnectFail.Load() != 1 {
		t.Error("connect failure not counted")
	}
}

// TestConnectTimeout: a connection that never completes ends at
// connect_timeout with ErrConnectTimeout. A TCP listener that does not
// accept still completes the handshake (the kernel does), so the test
// hangs the dial with a hook that waits for its context, which is what the
// kernel's SYN retries look like to the caller.
func TestConnectTimeout(t *testing.T) {
	pb := staticCluster(t, "web", "127.0.0.1:9")
	pb.ConnectTimeout = durationpb.New(50 * time.Millisecond)
	c := mustCompile(t, pb)
	c.dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	h, _ := c.Pick(nil)
	start := time.Now()
	for _, f := range []func() error{
		func() error { _, err := c.HTTP1(context.Background(), h); return err },
		func() error { _, err := c.HTTP2(context.Background(), h); return err },
		func() error { _, err := c.DialTCP(context.Background(), h); return err },
	} {
		if err := f(); !errors.Is(err, ErrConnectTimeout) {
			t.Errorf("error %v, want a connect timeout", err)
		}
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("three dials took %v, want about 3 × 50ms", d)
	}
	if n := c.Stats().UpstreamCxConnectTimeout.Load(); n != 3 {
		t.Errorf("%d timeouts counted, want 3", n)
	}
	// The caller giving up is not a connect timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.HTTP1(ctx, h); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrConnectTimeout) {
		t.Errorf("caller's deadline: error %v, want context.DeadlineExceeded", err)
	}
}

// TestHTTP1MaxRequestsPerConnection: max_requests_per_connection closes a
// connection after that many requests.
func TestHTTP1MaxRequestsPerConnection(t *testing.T) {
	b := startH1(t)
	pb := staticCluster(t, "web", b.addr)
	pb.MaxRequestsPerConnection = wrapU32(3)
	c := mustCompile(t, pb)
	h, _ := c.Pick(nil)
	for range 9 {
		if _, err := get1(context.Background(), c, h); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.conns.Load(); n != 3 {
		t.Errorf("9 requests at 3 per connection took %d connections, want 3", n)
	}
}

// TestHotPathAllocs: picking a host and taking and returning an idle
// connection allocate nothing.
func TestHotPathAllocs(t *testing.T) {
	b := startH1(t)
	ctx := context.Background()
	for _, pol := range []clusterv3.Cluster_LbPolicy{clusterv3.Cluster_ROUND_ROBIN, clusterv3.Cluster_LEAST_REQUEST,
		clusterv3.Cluster_RANDOM, clusterv3.Cluster_RING_HASH, clusterv3.Cluster_MAGLEV} {
		pb := staticCluster(t, "web", b.addr, "127.0.0.2:1", "127.0.0.3:1")
		pb.LbPolicy = pol
		c := mustCompile(t, pb)
		pc := &PickContext{Hash: 42, HasHash: true}
		if n := testing.AllocsPerRun(200, func() {
			h, err := c.Pick(pc)
			if err != nil {
				t.Fatal(err)
			}
			h.Acquire()
			h.Release()
		}); n != 0 {
			t.Errorf("%s: Pick allocates %v times", pol, n)
		}
	}
	c := mustCompile(t, staticCluster(t, "web", b.addr))
	h, _ := c.Pick(nil)
	cn, err := c.HTTP1(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	cn.Release(true)
	if n := testing.AllocsPerRun(200, func() {
		cn, err := c.HTTP1(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		cn.Release(true)
	}); n != 0 {
		t.Errorf("HTTP1 + Release of an idle connection allocates %v times", n)
	}
	if c.Stats().UpstreamCxTotal.Load() != 1 {
		t.Error("the idle connection was not reused")
	}
	od := mustCompile(t, originalDst())
	pc := &PickContext{OriginalDst: netip.MustParseAddrPort(b.addr)}
	od.Pick(pc)
	if n := testing.AllocsPerRun(200, func() { od.Pick(pc) }); n != 0 {
		t.Errorf("ORIGINAL_DST Pick of a known destination allocates %v times", n)
	}
}

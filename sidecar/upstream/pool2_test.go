package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"golang.org/x/net/http2"
)

// h2Backend is a golang.org/x/net/http2 server speaking h2c with prior
// knowledge on 127.0.0.1, answering gRPC-like: the request body echoed,
// then grpc-status 0 as a trailer.
type h2Backend struct {
	addr  string
	conns atomic.Int64
	mu    sync.Mutex
	open  []net.Conn
	// hold, when set, is called by the handler before it answers.
	hold func()
}

func startH2(t testing.TB) *h2Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &h2Backend{addr: ln.Addr().String()}
	srv := &http2.Server{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if b.hold != nil {
			b.hold()
		}
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(200)
		w.Write(body)
		w.Header().Set("Grpc-Status", "0")
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			b.mu.Lock()
			b.open = append(b.open, c)
			b.mu.Unlock()
			go srv.ServeConn(c, &http2.ServeConnOpts{Handler: h})
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.closeConns()
	})
	return b
}

func (b *h2Backend) closeConns() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.open {
		c.Close()
	}
	b.open = nil
}

func h2Cluster(t testing.TB, addr string, maxStreams uint32) *Cluster {
	pb := staticCluster(t, "grpc", addr)
	pb.Http2ProtocolOptions = &corev3.Http2ProtocolOptions{}
	if maxStreams > 0 {
		pb.Http2ProtocolOptions.MaxConcurrentStreams = wrapU32(maxStreams)
	}
	return mustCompile(t, pb)
}

// call2 runs one gRPC-like call and checks the echo and the trailer.
func call2(ctx context.Context, c *Cluster, msg string) error {
	h, err := c.Pick(nil)
	if err != nil {
		return err
	}
	h.Acquire()
	defer h.Release()
	cc, err := c.HTTP2(ctx, h)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://grpc.test/pkg.Svc/Call", strings.NewReader(msg))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if string(body) != msg || resp.Trailer.Get("Grpc-Status") != "0" {
		return &Error{Detail: "bad answer " + string(body) + " trailer " + resp.Trailer.Get("Grpc-Status")}
	}
	return nil
}

// TestHTTP2Multiplexed: 100 concurrent streams, all open at once (the
// server answers none until it has all 100), go over one connection, and
// each gets its trailers.
func TestHTTP2Multiplexed(t *testing.T) {
	b := startH2(t)
	const n = 100
	var arrived atomic.Int64
	all := make(chan struct{})
	b.hold = func() {
		if arrived.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(5 * time.Second):
		}
	}
	c := h2Cluster(t, b.addr, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if err := call2(ctx, c, strings.Repeat("x", i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	select {
	case <-all:
	default:
		t.Errorf("only %d streams were open at once, want %d", arrived.Load(), n)
	}
	if k := b.conns.Load(); k != 1 {
		t.Errorf("%d connections for %d concurrent streams, want 1", k, n)
	}
}

// TestHTTP2NewConnection: a connection at max_concurrent_streams gets a
// sibling, and a broken one is replaced.
func TestHTTP2NewConnection(t *testing.T) {
	b := startH2(t)
	release := make(chan struct{})
	var held atomic.Int64
	b.hold = func() {
		held.Add(1)
		<-release
	}
	c := h2Cluster(t, b.addr, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := call2(ctx, c, "hi"); err != nil {
				t.Error(err)
			}
		})
	}
	for held.Load() < 3 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if k := b.conns.Load(); k != 3 {
		t.Errorf("3 concurrent streams at 1 per connection used %d connections, want 3", k)
	}

	b.closeConns()
	time.Sleep(50 * time.Millisecond)
	if err := call2(ctx, c, "again"); err != nil {
		t.Fatalf("after the server closed its connections: %v", err)
	}
	if k := b.conns.Load(); k != 4 {
		t.Errorf("%d connections, want a 4th after the break", k)
	}
}

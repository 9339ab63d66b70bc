// Package passthrough is skein-proxy's transparent TCP forwarding: each
// connection a capture listener accepts goes on, unchanged, to a
// destination chosen for it (its original destination, read with
// SO_ORIGINAL_DST), with both directions copied until both are done. It is
// what the proxy does with traffic it has no configuration for, and all it
// does until it receives configuration over xDS.
package passthrough

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Forwarder forwards connections. Destination and Dial are required.
type Forwarder struct {
	// Destination returns where a connection goes.
	Destination func(*net.TCPConn) (netip.AddrPort, error)
	// Dial connects to a destination.
	Dial func(ctx context.Context, dst netip.AddrPort) (net.Conn, error)
	// ConnectTimeout bounds Dial; 0 means 10 seconds.
	ConnectTimeout time.Duration
	// OnError is told why a connection was dropped; nil drops silently.
	OnError func(error)

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Serve accepts connections on ln and forwards each until ln is closed; it
// then returns nil. Connections in flight go on; Drain waits for them.
func (f *Forwarder) Serve(ln net.Listener) error {
	own, _ := netip.ParseAddrPort(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		tcp, ok := c.(*net.TCPConn)
		if !ok {
			c.Close()
			continue
		}
		f.track(tcp, true)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.track(tcp, false)
			if err := f.forward(tcp, own.Port()); err != nil && f.OnError != nil {
				f.OnError(err)
			}
		}()
	}
}

func (f *Forwarder) forward(c *net.TCPConn, ownPort uint16) error {
	defer c.Close()
	dst, err := f.Destination(c)
	if err != nil {
		return fmt.Errorf("connection from %s: destination: %w", c.RemoteAddr(), err)
	}
	if dst.Port() == ownPort {
		// Sent to the listener itself, not redirected to it: forwarding it
		// to its "original" destination would loop back here.
		return fmt.Errorf("connection from %s to %s: addressed to the proxy's own port, refused", c.RemoteAddr(), dst)
	}
	timeout := f.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	up, err := f.Dial(ctx, dst)
	cancel()
	if err != nil {
		return fmt.Errorf("connection from %s to %s: %w", c.RemoteAddr(), dst, err)
	}
	f.track(up, true)
	defer f.track(up, false)
	splice(c, up)
	return nil
}

// splice copies both ways, passing on each side's end of stream as a
// half-close, and returns when both directions are done.
func splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	copyHalf := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // TCP to TCP: splice(2), no copy through user space
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go copyHalf(a, b)
	go copyHalf(b, a)
	<-done
	<-done
	_ = a.Close()
	_ = b.Close()
}

func (f *Forwarder) track(c net.Conn, add bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		f.conns = map[net.Conn]struct{}{}
	}
	if add {
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
}

// Drain waits until every forwarded connection has finished, or until ctx
// ends, when it closes those left and returns ctx's error. Close the
// listeners first, so that no new connection starts.
func (f *Forwarder) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		for c := range f.conns {
			_ = c.Close()
		}
		f.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

package passthrough

import (
	"bytes"
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
)

// counter is a backend that reads a connection to its end, answers with
// the number of bytes and where they came from, and closes.
func counter(t *testing.T) net.Listener {
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
				n, _ := io.Copy(io.Discard, c)
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintf(c, "%d from %s", n, host)
			}()
		}
	}()
	return ln
}

// forwarder serves a Forwarder that sends everything to dst.
func forwarder(t *testing.T, dst func(net.Listener) netip.AddrPort, errs chan<- error) (*Forwarder, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Forwarder{
		Destination: func(*net.TCPConn) (netip.AddrPort, error) { return dst(ln), nil },
		Dial:        DialOutbound,
		OnError: func(err error) {
			if errs != nil {
				errs <- err
			}
		},
	}
	go func() { _ = f.Serve(ln) }()
	t.Cleanup(func() { ln.Close() })
	return f, ln
}

func addrPort(ln net.Listener) netip.AddrPort { return netip.MustParseAddrPort(ln.Addr().String()) }

func TestForwardsBothWaysWithHalfClose(t *testing.T) {
	backend := counter(t)
	_, ln := forwarder(t, func(net.Listener) netip.AddrPort { return addrPort(backend) }, nil)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := bytes.Repeat([]byte("skein"), 200_000) // 1 MB
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite() // the backend answers only after our end of stream
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d from 127.0.0.1", len(payload)); string(answer) != want {
		t.Errorf("backend answered %q, want %q", answer, want)
	}
}

func TestRefusesItsOwnPort(t *testing.T) {
	errs := make(chan error, 1)
	_, ln := forwarder(t, addrPort, errs)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("read %d, %v; want the connection closed", n, err)
	}
	if err := <-errs; !strings.Contains(err.Error(), "own port") {
		t.Errorf("error %v does not say why", err)
	}
}

func TestUnreachableDestinationIsReported(t *testing.T) {
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dst := addrPort(gone)
	gone.Close()
	errs := make(chan error, 1)
	_, ln := forwarder(t, func(net.Listener) netip.AddrPort { return dst }, errs)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-errs; !strings.Contains(err.Error(), dst.String()) {
		t.Errorf("error %v does not name the destination %s", err, dst)
	}
}

func TestDrain(t *testing.T) {
	backend := counter(t)
	f, ln := forwarder(t, func(net.Listener) netip.AddrPort { return addrPort(backend) }, nil)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("in flight")); err != nil {
			t.Fatal(err)
		}
		return c
	}
	finishing, stuck := dial(), dial()
	defer stuck.Close()
	time.Sleep(100 * time.Millisecond) // both are being forwarded
	ln.Close()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(200 * time.Millisecond)
		_ = finishing.(*net.TCPConn).CloseWrite()
		answer, _ := io.ReadAll(finishing)
		if string(answer) != "9 from 127.0.0.1" {
			t.Errorf("a connection in flight during the drain got %q", answer)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := f.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain with a connection that never ends = %v, want the deadline", err)
	}
	wg.Wait()
	_ = stuck.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(stuck); err != nil {
		t.Errorf("the connection left at the deadline was not closed: %v", err)
	}
}

func TestDialInboundComesFromTheSpareLoopbackAddress(t *testing.T) {
	backend := counter(t)
	c, err := DialInbound(context.Background(), addrPort(backend))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).CloseWrite()
	answer, _ := io.ReadAll(c)
	if string(answer) != "0 from 127.0.0.6" {
		t.Errorf("the app saw %q, want a connection from 127.0.0.6", answer)
	}
}

package upstream

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"

	"github.com/skeinmesh/skein/sidecar/http1"
	"github.com/skeinmesh/skein/sidecar/lb"
)

// MaxIdlePerHost bounds the idle HTTP/1.1 connections kept per host; one
// released beyond it is closed. It is as high as Envoy's default
// max_connections circuit breaker: with 64, an HTTP/2 client keeping 320
// requests in flight (each needing a connection of its own upstream) made
// the proxy close and dial a connection per request.
const MaxIdlePerHost = 1024

// endpoint is one host's connection pools.
type endpoint struct {
	c    *Cluster
	host *lb.Host
	used atomic.Bool // ORIGINAL_DST: picked since the last sweep

	mu     sync.Mutex
	closed bool                // drained: nothing pooled any more
	idle   []*Conn1            // HTTP/1.1, most recently released last
	h2     []*http2.ClientConn // HTTP/2, in dial order
	h2dial chan struct{}       // closed when the HTTP/2 dial in progress ends
}

func newEndpoint(c *Cluster, h *lb.Host) *endpoint {
	return &endpoint{c: c, host: h, idle: make([]*Conn1, 0, 4)}
}

// drain stops pooling: idle HTTP/1.1 connections close now, busy ones on
// Release; HTTP/2 connections close once no stream has used them for a
// grace period.
func (ep *endpoint) drain() {
	ep.mu.Lock()
	ep.closed = true
	idle, h2 := ep.idle, ep.h2
	ep.idle, ep.h2 = nil, nil
	ep.mu.Unlock()
	for _, cn := range idle {
		cn.close()
	}
	for _, cc := range h2 {
		go closeWhenIdle(cc)
	}
}

// Conn1 is an HTTP/1.1 connection from a host's keep-alive pool, with its
// pooled reader and writer. Use R and W (not the embedded Conn) for the
// request and response, and Release it exactly once.
type Conn1 struct {
	net.Conn
	// R reads the response; pooled (http1.NewReader).
	R *bufio.Reader
	// W writes the request; pooled (http1.NewWriter). Flush it.
	W *bufio.Writer

	rd        yieldReader
	wr        noteWriter
	ep        *endpoint // nil: not pooled (host removed, cluster closed)
	reused    bool
	uses      uint32
	idleSince time.Time
	rc        syscall.RawConn
	peekFn    func(fd uintptr) bool
	peekErr   syscall.Errno
	peekN     uintptr
	peekBuf   [1]byte
}

// Reused reports whether the connection served an earlier request. A
// request on a reused connection that fails before any byte of the
// response arrived may have met a connection the server closed at that
// very moment (after HTTP1's liveness check); the router may retry such a
// request once on a new connection if the request is replayable, as
// net/http does.
func (cn *Conn1) Reused() bool { return cn.reused }

// Release returns the connection: to the idle pool when reusable is true
// (the response was read to its end, neither side asked to close, nothing
// is left buffered) and the pool has room, closed otherwise. The caller
// must clear any deadline it set. cn must not be used afterwards.
func (cn *Conn1) Release(reusable bool) {
	ep := cn.ep
	cn.uses++
	if !reusable || ep == nil || cn.W.Buffered() > 0 || cn.R.Buffered() > 0 ||
		(ep.c.maxRequests > 0 && cn.uses >= ep.c.maxRequests) {
		cn.close()
		return
	}
	now := time.Now()
	ep.mu.Lock()
	if ep.closed || len(ep.idle) >= MaxIdlePerHost {
		ep.mu.Unlock()
		cn.close()
		return
	}
	cn.idleSince = now
	ep.idle = append(ep.idle, cn)
	var expired *Conn1
	if t := ep.c.idleTimeout; t > 0 && now.Sub(ep.idle[0].idleSince) > t {
		expired = ep.idle[0]
		copy(ep.idle, ep.idle[1:])
		ep.idle[len(ep.idle)-1] = nil
		ep.idle = ep.idle[:len(ep.idle)-1]
	}
	ep.mu.Unlock()
	if expired != nil {
		expired.close()
	}
}

func (cn *Conn1) close() {
	cn.Conn.Close()
	http1.PutReader(cn.R)
	http1.PutWriter(cn.W)
	cn.R, cn.W = nil, nil
}

// yieldReader is what a Conn1's R reads from: the connection, except that
// the first read after a request went out yields the processor first
// (runtime.Gosched). The response is seldom there the moment the request
// left, so reading at once costs a read that finds nothing (EAGAIN) and a
// wait in the poller; letting the other goroutines that are ready run
// first is cheaper, and on a busy proxy the response has arrived by then.
type yieldReader struct {
	net.Conn
	wrote atomic.Bool
}

func (r *yieldReader) Read(p []byte) (int, error) {
	if r.wrote.Swap(false) {
		runtime.Gosched()
	}
	return r.Conn.Read(p)
}

// noteWriter is what a Conn1's W writes to: the connection, telling rd.
type noteWriter struct {
	net.Conn
	rd *yieldReader
}

func (w *noteWriter) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	w.rd.wrote.Store(true)
	return n, err
}

// HTTP1 returns a connection to h for one HTTP/1.1 exchange: the most
// recently released idle one that is still open, or a new one dialled
// within the connect timeout. An idle connection the server has closed (or
// sent unsolicited bytes on) is detected before reuse by a non-blocking
// MSG_PEEK and discarded (Stats.UpstreamCxStale); one idle longer than the
// idle_timeout is closed. Taking an idle connection allocates nothing. For
// a host no longer in the cluster (removed after Pick) the connection is
// new and closes on Release.
func (c *Cluster) HTTP1(ctx context.Context, h *lb.Host) (*Conn1, error) {
	return c.http1(ctx, h, 0)
}

// ReplayPeekAfter is how long a connection must have been idle for
// HTTP1Replayable to check it with MSG_PEEK before reuse.
const ReplayPeekAfter = time.Second

// HTTP1Replayable is HTTP1 for a request the caller resends once, on a
// connection from HTTP1, when this one fails before any byte of the
// response arrived and Reused says it had served an earlier request. It
// skips the liveness peek (a system call per request) for a connection idle
// less than ReplayPeekAfter: a server closes a keep-alive connection on its
// idle timeout, seconds after its last response, and the rare one closed
// sooner costs the resend, which peeks at every connection it considers.
func (c *Cluster) HTTP1Replayable(ctx context.Context, h *lb.Host) (*Conn1, error) {
	return c.http1(ctx, h, ReplayPeekAfter)
}

func (c *Cluster) http1(ctx context.Context, h *lb.Host, peekAfter time.Duration) (*Conn1, error) {
	ep := c.endpointOf(h)
	if ep != nil {
		if cn := ep.takeIdle(peekAfter); cn != nil {
			c.stats.UpstreamCxReused.Add(1)
			return cn, nil
		}
	}
	conn, err := c.connect(ctx, h.Address)
	if err != nil {
		return nil, err
	}
	cn := &Conn1{Conn: conn}
	cn.rd.Conn, cn.wr.Conn, cn.wr.rd = conn, conn, &cn.rd
	cn.R, cn.W = http1.NewReader(&cn.rd), http1.NewWriter(&cn.wr)
	if ep != nil && !ep.isClosed() {
		cn.ep = ep
	}
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			cn.rc = rc
			cn.peekFn = cn.peek
		}
	}
	return cn, nil
}

func (ep *endpoint) isClosed() bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.closed
}

// takeIdle pops live idle connections until one passes the checks; one
// idle for less than peekAfter is not peeked at.
func (ep *endpoint) takeIdle(peekAfter time.Duration) *Conn1 {
	for {
		ep.mu.Lock()
		n := len(ep.idle)
		if n == 0 {
			ep.mu.Unlock()
			return nil
		}
		cn := ep.idle[n-1]
		ep.idle[n-1] = nil
		ep.idle = ep.idle[:n-1]
		ep.mu.Unlock()
		var idle time.Duration
		if t := ep.c.idleTimeout; t > 0 || peekAfter > 0 {
			idle = time.Since(cn.idleSince)
			if t > 0 && idle > t {
				cn.close()
				continue
			}
		}
		if (peekAfter == 0 || idle >= peekAfter) && !cn.alive() {
			ep.c.stats.UpstreamCxStale.Add(1)
			cn.close()
			continue
		}
		cn.reused = true
		return cn
	}
}

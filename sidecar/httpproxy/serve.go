package httpproxy

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/skeinmesh/skein/sidecar/http1"
	"github.com/skeinmesh/skein/sidecar/listener"
	"github.com/skeinmesh/skein/sidecar/router"
	"github.com/skeinmesh/skein/sidecar/stats"
)

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// ServeConn serves one downstream connection: HTTP/2 when the listener
// detected its preface (or codec_type is HTTP2), HTTP/1.1 otherwise. With
// codec_type AUTO and no detection done (info.Protocol unknown), it looks
// at the first bytes itself.
func (h *Handler) ServeConn(ctx context.Context, c net.Conn, info *listener.ConnInfo) {
	s := &conn1{h: h, ctx: ctx}
	s.dc.Conn = c
	if info != nil {
		s.src, s.dst = info.Source, info.Destination
	}
	s.br = http1.NewReader(&s.dc)
	defer func() {
		if s.br != nil {
			http1.PutReader(s.br)
		}
	}()
	stop := context.AfterFunc(ctx, func() {
		s.dc.stopped.Store(true) // before the deadlines: see dconn
		c.SetDeadline(past)
		if cn := s.cur.Load(); cn != nil {
			cn.SetDeadline(past)
		}
	})
	defer stop()
	h2 := false
	switch {
	case h.Codec == CodecHTTP2:
		h2 = true
	case h.Codec == CodecHTTP1:
	case info != nil && info.Protocol == listener.ProtocolHTTP2:
		h2 = true
	case info != nil && info.Protocol == listener.ProtocolHTTP1:
	default:
		h2 = s.sniffH2()
	}
	if h2 {
		s.dc.setRead(0, time.Time{})
		h.serve2(ctx, &bufferedConn{Conn: c, r: s.br}, s.src, s.dst)
		return
	}
	s.bw = http1.NewWriter(&s.dc)
	defer http1.PutWriter(s.bw)
	for s.serveOne() {
	}
}

// sniffH2 reports whether the connection opens with the HTTP/2 preface,
// reading only as many bytes as it takes to tell.
func (s *conn1) sniffH2() bool {
	s.dc.setRead(s.h.IdleTimeout, time.Time{})
	want := 1
	for {
		if _, err := s.br.Peek(want); err != nil {
			return false
		}
		b, _ := s.br.Peek(min(s.br.Buffered(), len(h2Preface)))
		for i := range b {
			if b[i] != h2Preface[i] {
				return false
			}
		}
		if len(b) == len(h2Preface) {
			return true
		}
		want = len(b) + 1
	}
}

// bufferedConn is a connection whose reads go through r (which holds bytes
// already read from it).
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// dconn is the downstream connection with the timeouts of the request in
// progress: each read pushes the read deadline to now+readIdle (capped at
// readHard), and each write pushes the upstream connection's read deadline
// to now+upIdle (capped at upHard), so that a response streaming to the
// client is idle only when nothing arrives for upIdle.
//
// Deadlines are timer operations, so they change only when they must: the
// deadline in force may be earlier than the one wanted by up to 1/16 of the
// idle timeout (never later), readSet and upSet record what is in force,
// and a deadline for reads that may never happen (the rest of a request
// whose body there is none of) is applied by the next Read, if any.
type dconn struct {
	net.Conn
	readIdle time.Duration
	readHard time.Time
	readSet  time.Time // the read deadline in force
	up       net.Conn  // nil: none, or its deadlines are unknown (set anew)
	upIdle   time.Duration
	upHard   time.Time
	upSet    time.Time // up's read deadline in force; its write deadline is upHard
	// stopped is set when the connection's context ended, just before its
	// deadlines are set in the past; every later deadline change checks it
	// so that none undoes them.
	stopped atomic.Bool
}

// past is the deadline of a connection being cut.
var past = time.Unix(1, 0)

// cut puts the deadlines of c in the past if the connection was stopped.
func (d *dconn) cut(c net.Conn) {
	if d.stopped.Load() {
		c.SetDeadline(past)
	}
}

// setRead sets the read timeouts for what follows, now.
func (d *dconn) setRead(idle time.Duration, hard time.Time) {
	d.readIdle, d.readHard = idle, hard
	d.pushRead(deadline(time.Now(), idle, hard))
}

// setReadLazy sets the read timeouts for what follows; the next Read
// applies them (a cheaper setRead for reads that may not happen).
func (d *dconn) setReadLazy(idle time.Duration, hard time.Time) {
	d.readIdle, d.readHard = idle, hard
}

// pushRead sets the read deadline to next unless the one in force is at
// most readIdle/16 earlier.
func (d *dconn) pushRead(next time.Time) {
	if moved(next, d.readSet, d.readIdle) {
		d.readSet = next
		d.Conn.SetReadDeadline(next)
		d.cut(d.Conn)
	}
}

// setUp sets the upstream connection whose read deadline downstream writes
// push, and its deadlines: reads within idle (from now) and hard, writes
// within hard. A connection from the pool has no deadlines (Conn1.Release
// wants them cleared). Call restartUp when the request is sent: the wait
// for the response starts then; clear d.up when the exchange is over.
func (d *dconn) setUp(up net.Conn, idle time.Duration, hard time.Time, now time.Time) {
	d.up, d.upIdle, d.upHard = up, idle, hard
	d.upSet = deadline(now, idle, hard)
	// Set even when none is wanted: a connection cut just after its
	// release (ServeConn's drain, racing) may carry a past deadline.
	switch {
	case d.upSet.Equal(hard):
		up.SetDeadline(hard) // one call for both
	default:
		up.SetReadDeadline(d.upSet)
		if !hard.IsZero() {
			up.SetWriteDeadline(hard)
		}
	}
	d.cut(up)
}

// restartUp pushes the upstream read deadline to now+upIdle (capped at
// upHard).
func (d *dconn) restartUp() {
	if d.up == nil || d.upIdle <= 0 || (!d.upHard.IsZero() && d.upSet.Equal(d.upHard)) {
		return // capped at the hard deadline already: nothing later moves it
	}
	if next := deadline(time.Now(), d.upIdle, d.upHard); moved(next, d.upSet, d.upIdle) {
		d.upSet = next
		d.up.SetReadDeadline(next)
		d.cut(d.up)
	}
}

// deadline is now+idle capped at hard; zero idle and hard: none.
func deadline(now time.Time, idle time.Duration, hard time.Time) time.Time {
	var t time.Time
	if idle > 0 {
		t = now.Add(idle)
	}
	if !hard.IsZero() && (t.IsZero() || hard.Before(t)) {
		t = hard
	}
	return t
}

// moved reports whether a deadline of next is worth setting over set: the
// idle deadlines move by at least 1/16 of idle, so a busy stream does not
// reset a timer on every read; an earlier one always moves.
func moved(next, set time.Time, idle time.Duration) bool {
	if next.IsZero() || set.IsZero() {
		return !next.Equal(set)
	}
	return next.Sub(set) > idle/16 || next.Before(set)
}

func (d *dconn) Read(b []byte) (int, error) {
	if d.readIdle > 0 {
		d.pushRead(deadline(time.Now(), d.readIdle, d.readHard))
	} else if !d.readHard.Equal(d.readSet) {
		d.pushRead(d.readHard)
	}
	return d.Conn.Read(b)
}

func (d *dconn) Write(b []byte) (int, error) {
	d.restartUp()
	return d.Conn.Write(b)
}

// table is the route table a request is routed with: the inline one, or
// the current RDS table.
func (h *Handler) table() *router.Table {
	if h.table0 != nil {
		return h.table0
	}
	return h.deps.Routes.Table(h.RouteConfigName)
}

// stat is a cluster's stats handle, nil without stats.
func (h *Handler) stat(name string) *stats.Cluster {
	if h.deps.Stats == nil {
		return nil
	}
	return h.deps.Stats.Cluster(name)
}

// isGRPC reports whether a content-type is gRPC's ("application/grpc",
// "application/grpc+proto"...), not gRPC-Web's.
func isGRPC(ct []byte) bool {
	const p = "application/grpc"
	if len(ct) < len(p) || string(ct[:len(p)]) != p {
		return false
	}
	return len(ct) == len(p) || ct[len(p)] == '+' || ct[len(p)] == ';'
}

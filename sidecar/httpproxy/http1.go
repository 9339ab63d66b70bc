package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/skeinmesh/skein/sidecar/http1"
	"github.com/skeinmesh/skein/sidecar/lb"
	"github.com/skeinmesh/skein/sidecar/router"
	"github.com/skeinmesh/skein/sidecar/upstream"
)

// conn1 is one downstream HTTP/1.1 connection: everything a request needs
// is here and reused for the next one, so the steady state allocates
// nothing.
type conn1 struct {
	h        *Handler
	ctx      context.Context
	dc       dconn
	br       *bufio.Reader
	bw       *bufio.Writer
	src, dst netip.AddrPort

	req      http1.RequestHead
	resp     http1.ResponseHead
	x        Exchange
	pc       upstream.PickContext
	rs       retryState
	body     keptBody1 // the request body, kept for retries
	bodyDone bool      // the request body was read (or there is none)
	informed bool      // a 1xx other than 100 went downstream: no retry
	b2       *body2    // the body of a request to an HTTP/2 upstream
	// cur is the upstream connection in use, for ServeConn to cut when
	// the proxy gives up on the connection (drain deadline).
	cur atomic.Pointer[upstream.Conn1]
	buf []byte
	rid [36]byte
}

// serveOne serves one request and reports whether the connection goes on.
func (s *conn1) serveOne() bool {
	h := s.h
	s.dc.setReadLazy(h.IdleTimeout, time.Time{})
	s.req.Limits = http1.Limits{MaxHeadBytes: h.MaxRequestHeadersKB << 10, MaxHeaders: h.MaxHeaders}
	if s.br.Buffered() == 0 {
		yieldBeforeRead()
	}
	err := http1.ParseRequestHead(s.br, &s.req)
	start := time.Now()
	if err != nil {
		var e *http1.Error
		if errors.As(err, &e) {
			s.req.Reset()
			s.bodyDone = false
			s.localReply(e.Status, ReasonBadRequest, nil, router.HeaderEdits{}, nil)
		}
		return false
	}
	var hard time.Time
	if h.RequestTimeout > 0 {
		hard = start.Add(h.RequestTimeout)
	}
	s.dc.setReadLazy(h.StreamIdleTimeout, hard) // for the body, if any
	req := &s.req
	s.bodyDone = req.Body.Kind == http1.NoBody
	x := &s.x
	x.reset()
	view := router.HTTP1(req)
	x.Request = view
	x.RequestHeaders = &req.Header
	x.Source, x.Destination = s.src, s.dst
	x.GRPC = isGRPC(req.Header.Get("content-type"))
	if t := h.table(); t != nil {
		x.Route = t.Route(view)
	}
	if !h.runRequestFilters(x) {
		return s.localReply(x.reply.status, x.reply.reason, nil, router.HeaderEdits{}, nil)
	}
	return s.route(start)
}

// route is the router filter: it answers redirects and direct responses,
// or forwards the request to the route's cluster.
func (s *conn1) route(start time.Time) bool {
	h, x, req := s.h, &s.x, &s.req
	r := x.Route
	if r == nil {
		return s.localReply(404, ReasonNoRoute, nil, router.HeaderEdits{}, nil)
	}
	switch r.Action {
	case router.ActionRedirect:
		s.buf = r.Location(s.buf[:0], "http", x.Request)
		return s.localReply(r.Redirect.Status, ReasonRedirect, nil, r.ResponseHeaders, s.buf)
	case router.ActionDirectResponse:
		return s.localReply(r.DirectResponse.Status, ReasonDirectResponse, r.DirectResponse.Body, r.ResponseHeaders, nil)
	}
	wc := r.Pick(rand.Uint64())
	x.Cluster = wc.Name
	cl := h.deps.Clusters.Get(wc.Name)
	if cl == nil {
		return s.localReply(r.ClusterNotFoundStatus, ReasonClusterNotFound, nil, r.ResponseHeaders, nil)
	}
	upgrading := req.Upgrading()
	if upgrading && !h.upgradeAllowed(req.Header.Get("upgrade")) {
		return s.localReply(403, ReasonUpgradeFailed, nil, router.HeaderEdits{}, nil)
	}
	st := h.stat(wc.Name)
	s.pc = upstream.PickContext{OriginalDst: s.dst}
	s.pc.Hash, s.pc.HasHash = r.Hash(x.Request, s.src.Addr())
	var hard time.Time
	if r.Timeout > 0 {
		hard = start.Add(r.Timeout)
	}
	rs := &s.rs
	policy := r.Retry
	if upgrading {
		policy = nil // a tunnel is not retried
	}
	rs.reset(policy, cl, hard)
	defer rs.release()
	host, err := rs.pick(cl, &s.pc)
	if err != nil {
		status, reason := upstreamReason(err)
		st.RequestDone(status, time.Since(start), 0, 0)
		return s.localReply(status, reason, nil, wc.ResponseHeaders, nil)
	}
	if err := s.rewrite(r, wc); err != nil {
		return s.localReply(400, ReasonBadRequest, nil, router.HeaderEdits{}, nil)
	}
	s.body.reset(policy != nil && req.Body.Kind != http1.NoBody)
	defer s.body.free()
	s.b2 = nil
	s.informed = false
	var keep, retry bool
	var status int
	var rx, tx int64
	for {
		host.Acquire()
		if cl.Protocol() == upstream.HTTP2 && !upgrading {
			keep, status, rx, tx, retry = s.forward2(cl, host, r, wc)
		} else {
			keep, status, rx, tx, retry = s.forward1(cl, host, r, wc, upgrading)
		}
		host.Release()
		if !retry {
			break
		}
		if !rs.sleep(s.ctx) {
			s.b2.end(errGaveUp)
			st.RequestDone(0, time.Since(start), 0, tx)
			return false // the connection is being cut
		}
		if host, err = rs.pick(cl, &s.pc); err != nil {
			tx = max(tx, s.b2.end(errGaveUp))
			status, reason := upstreamReason(err)
			st.RequestDone(status, time.Since(start), 0, tx)
			return s.localReply(status, reason, nil, wc.ResponseHeaders, nil)
		}
	}
	s.b2.end(errGaveUp) // a no-op unless a path left the body copy running
	st.RequestDone(status, time.Since(start), rx, tx)
	return keep
}

// rewrite applies the route's path and host rewrites, its header edits and
// the connection manager's own headers.
func (s *conn1) rewrite(r *router.Route, wc *router.WeightedCluster) error {
	h, req := s.h, &s.req
	var ok bool
	s.buf, ok = r.RewritePath(s.buf[:0], req.Path())
	if ok {
		if q := req.Query(); q != nil {
			s.buf = append(s.buf, '?')
			s.buf = append(s.buf, q...)
		}
		if err := req.SetTarget(s.buf); err != nil {
			return err
		}
	}
	if wc.HostRewrite != "" {
		req.Header.Set("host", wc.HostRewrite)
	}
	wc.RequestHeaders.Apply(&req.Header)
	req.Header.Del("x-forwarded-client-cert") // SANITIZE
	if h.UseRemoteAddress {
		req.Header.Set("x-forwarded-proto", "http")
		s.buf = s.buf[:0]
		if v := req.Header.Get("x-forwarded-for"); len(v) > 0 {
			s.buf = append(s.buf, v...)
			s.buf = append(s.buf, ", "...)
		}
		s.buf = s.src.Addr().AppendTo(s.buf)
		req.Header.Del("x-forwarded-for")
		req.Header.AddBytes(xffName, s.buf)
	} else if !req.Header.Has("x-forwarded-proto") {
		req.Header.Add("x-forwarded-proto", "http")
	}
	if h.GenerateRequestID && !req.Header.Has("x-request-id") {
		req.Header.AddBytes(requestIDName, newRequestID(&s.rid))
	}
	return nil
}

var (
	xffName       = []byte("x-forwarded-for")
	requestIDName = []byte("x-request-id")
	locationName  = []byte("location")
)

// newRequestID writes a random (version 4) UUID into b.
func newRequestID(b *[36]byte) []byte {
	const hex = "0123456789abcdef"
	hi, lo := rand.Uint64(), rand.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // variant 10
	j := 0
	for i := 0; i < 32; i++ {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b[j] = '-'
			j++
		}
		var nib uint64
		if i < 16 {
			nib = hi >> (60 - 4*i) & 0xf
		} else {
			nib = lo >> (60 - 4*(i-16)) & 0xf
		}
		b[j] = hex[nib]
		j++
	}
	return b[:]
}

// forward1 sends the request to host over an HTTP/1.1 connection from the
// cluster's pool and the response back. It reports whether the downstream
// connection goes on, the status sent (0: none) and the body bytes; or,
// having sent nothing downstream, that the try failed in a way the route's
// retry policy retries (retry).
func (s *conn1) forward1(cl *upstream.Cluster, host *lb.Host, r *router.Route, wc *router.WeightedCluster, upgrading bool) (keep bool, status int, rx, tx int64, retry bool) {
	h, req, resp, rs := s.h, &s.req, &s.resp, &s.rs
	reqBody := req.Body
	keep = !req.Close
	expect := req.ExpectsContinue()
	req.StripHopByHop()
	now := time.Now()
	hard, perTry := rs.tryDeadline(now)
	idle := h.StreamIdleTimeout
	switch {
	case r.IdleTimeout == router.Disabled:
		idle = 0
	case r.IdleTimeout > 0:
		idle = r.IdleTimeout
	}
	if idle != h.StreamIdleTimeout {
		s.dc.setReadLazy(idle, s.dc.readHard)
	}
	var cn *upstream.Conn1
	bodySent := false
	replayable := reqBody.Kind == http1.NoBody && idempotent(req)
	for attempt := 0; ; attempt++ {
		var err error
		if replayable && attempt == 0 {
			cn, err = cl.HTTP1Replayable(s.ctx, host) // resent below if it was stale
		} else {
			cn, err = cl.HTTP1(s.ctx, host)
		}
		if err != nil {
			if s.retries(failureOf(err), host) {
				return keep, 0, 0, 0, true
			}
			status, reason := upstreamReason(err)
			return s.localReply(status, reason, nil, wc.ResponseHeaders, nil), status, 0, 0, false
		}
		if !cn.Reused() {
			now = time.Now() // after the dial: the idle wait starts here
		}
		s.cur.Store(cn)
		s.dc.setUp(cn.Conn, idle, hard, now)
		sent := false
		err = http1.WriteRequestHead(cn.W, req)
		if err == nil {
			switch {
			case reqBody.Kind == http1.NoBody:
				err = cn.W.Flush()
				bodySent = true
			case s.body.complete:
				// A retry: the body the first try read, as it was sent.
				if _, err = cn.W.Write(s.body.buf); err == nil {
					err = cn.W.Flush()
				}
				bodySent, tx = err == nil, int64(len(s.body.buf))
			case expect:
				err = cn.W.Flush()
			default:
				tx, err = s.copyBody(cn.W, reqBody)
				bodySent = err == nil
			}
		}
		if err == nil {
			sent = bodySent
			s.dc.restartUp() // the wait for the response starts now
			if cn.R.Buffered() == 0 {
				yieldBeforeRead()
			}
			err = s.readResponseHead(cn, &bodySent, reqBody, &tx)
		}
		if err == nil {
			break
		}
		reused := cn.Reused()
		s.cur.Store(nil)
		s.dc.up = nil
		cn.SetDeadline(time.Time{})
		cn.Release(false)
		if reused && attempt == 0 && replayable && s.ctx.Err() == nil &&
			!errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, errDownstream) {
			continue // the server closed an idle connection as we reused it
		}
		if errors.Is(err, errDownstream) {
			return false, 0, 0, tx, false
		}
		if s.retries(s.tryFailure(err, sent || bodySent, perTry, hard), host) {
			return keep, 0, 0, tx, true
		}
		status, reason := responseError(err)
		if reason == ReasonUpstreamTimeout && !s.dc.readHard.IsZero() && !time.Now().Before(s.dc.readHard) && !s.bodyDone {
			status, reason = 408, ReasonRequestTimeout // the client's body was too slow
		}
		return s.localReply(status, reason, nil, wc.ResponseHeaders, nil), status, 0, tx, false
	}
	status = resp.Status
	if !bodySent {
		keep = false // the client may still send the body it held back
	}
	if resp.Upgrading() {
		if !upgrading {
			s.cur.Store(nil)
			s.dc.up = nil
			cn.Release(false)
			return s.localReply(502, ReasonUpstreamProtocol, nil, wc.ResponseHeaders, nil), 502, 0, tx, false
		}
		resp.StripHopByHop()
		resp.Proto = req.Proto
		s.respond(wc)
		err := http1.WriteResponseHead(s.bw, resp)
		if err == nil {
			err = s.bw.Flush()
		}
		s.dc.up = nil
		s.dc.setRead(0, time.Time{})
		cn.SetDeadline(time.Time{})
		s.dc.cut(cn.Conn)
		if err == nil {
			rx, tx = s.tunnel(cn)
		}
		s.cur.Store(nil)
		cn.Release(false)
		return false, status, rx, tx, false
	}
	if rs.p != nil && retriesResponse(rs.p, status, resp.Header.Get("grpc-status")) && s.retries(responseFailure(resp.Header.Get(HeaderReason)), host) {
		s.discard(cn, bodySent)
		return keep, 0, 0, tx, true
	}
	if perTry {
		s.dc.setUp(cn.Conn, idle, rs.hard, time.Now()) // the per-try timeout ends with the head
	}
	upKeep := !resp.Close && bodySent
	in := resp.Body
	out := in.For(req.Proto)
	resp.StripHopByHop()
	resp.Proto = req.Proto
	keep = keep && out.Kind != http1.UntilClose
	resp.Close = !keep
	resp.Body = out
	s.respond(wc)
	err := http1.WriteResponseHead(s.bw, resp)
	if err == nil {
		rx, err = http1.CopyBody(s.bw, cn.R, in, out)
	}
	s.cur.Store(nil)
	s.dc.up = nil
	cn.SetDeadline(time.Time{})
	if err != nil {
		// Bytes of the response went out: all that is left is closing.
		cn.Release(false)
		return false, status, rx, tx, false
	}
	cn.Release(upKeep)
	return keep, status, rx, tx, false
}

// retries reports whether the request is retried after a try on host that
// failed with f (0: a response the policy retries): the policy retries f
// (then host is marked, retryState.markFailed), and a
// retry can happen (retryState.mayRetry) with the request as it was, body
// included, and nothing of the response sent downstream.
func (s *conn1) retries(f failure, host *lb.Host) bool {
	rs := &s.rs
	if rs.p == nil || (f != 0 && f != failPeerConnect && !retriesFailure(rs.p.On, f)) {
		return false
	}
	rs.failed(f, host)
	if s.informed {
		return false
	}
	if s.req.Body.Kind != http1.NoBody && s.body.started {
		if s.b2 != nil && !s.b2.replayable() || s.b2 == nil && !s.body.complete {
			return false // part of the body went and is not kept
		}
	}
	return rs.mayRetry()
}

// tryFailure classifies the failure of a try after its connection was
// obtained: sent says the request went out in full; perTry that the try's
// deadline (hard) is the per-try timeout.
func (s *conn1) tryFailure(err error, sent, perTry bool, hard time.Time) failure {
	var pe *http1.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if perTry && !time.Now().Before(hard) && s.ctx.Err() == nil {
			return failPerTryTimeout
		}
		return 0 // the route's timeout, or the stream idle timeout
	case s.ctx.Err() != nil:
		return 0
	case errors.As(err, &pe):
		return failProtocol
	case !sent:
		return failResetBeforeRequest
	}
	return failReset
}

// failureOf classifies an error from a connection pool.
func failureOf(err error) failure {
	if errors.Is(err, upstream.ErrConnectFailure) || errors.Is(err, upstream.ErrConnectTimeout) {
		return failConnect
	}
	return 0
}

// discard ends a response the request is retried after: a small body is
// read and the connection reused, otherwise the connection is closed.
func (s *conn1) discard(cn *upstream.Conn1, bodySent bool) {
	resp := &s.resp
	reuse := false
	if in := resp.Body; bodySent && !resp.Close && (in.Kind == http1.NoBody ||
		in.Kind == http1.ContentLength && in.Length <= discardLimit) {
		bw := http1.NewWriter(io.Discard)
		_, err := http1.CopyBody(bw, cn.R, in, in)
		http1.PutWriter(bw)
		reuse = err == nil
	}
	s.cur.Store(nil)
	s.dc.up = nil
	cn.SetDeadline(time.Time{})
	cn.Release(reuse)
}

// discardLimit is the largest response body read to keep its connection
// when the response is retried.
const discardLimit = 64 << 10

// copyBody sends the request body to w, keeping a copy in s.body when the
// request may be retried.
func (s *conn1) copyBody(w *bufio.Writer, f http1.Framing) (int64, error) {
	s.body.started = true
	var n int64
	var err error
	if s.body.keep {
		s.body.w = w
		bw := http1.NewWriter(&s.body)
		n, err = http1.CopyBody(bw, s.br, f, f)
		if err == nil {
			err = bw.Flush()
		}
		http1.PutWriter(bw)
		s.body.w = nil
		s.body.complete = err == nil && !s.body.over
	} else {
		n, err = http1.CopyBody(w, s.br, f, f)
	}
	s.bodyDone = err == nil
	return n, err
}

// yieldBeforeRead lets the goroutines that are ready run before a read
// whose bytes the peer cannot have sent yet (it has just been written to):
// read at once, it would fail with EAGAIN, a system call for nothing before
// the goroutine parks on the poller. Under load the bytes have often come
// by the time the others ran; with nothing else ready it returns at once.
func yieldBeforeRead() { runtime.Gosched() }

// idempotent reports whether a request may be sent again (RFC 9110 §9.2.2).
func idempotent(req *http1.RequestHead) bool { return idempotentMethod(string(req.Method())) }

// errDownstream marks a failure on the downstream side while sending the
// request (the client went away): nothing to answer.
var errDownstream = errors.New("downstream connection failed")

// readResponseHead reads the upstream's response head into s.resp,
// passing 1xx responses on and sending a held-back body after 100.
func (s *conn1) readResponseHead(cn *upstream.Conn1, bodySent *bool, reqBody http1.Framing, tx *int64) error {
	req, resp := &s.req, &s.resp
	for {
		if err := http1.ParseResponseHead(cn.R, resp, req.Method()); err != nil {
			return err
		}
		if !resp.Informational() {
			return nil
		}
		resp.StripHopByHop()
		resp.Proto = req.Proto
		if err := http1.WriteResponseHead(s.bw, resp); err != nil {
			return errDownstream
		}
		if err := s.bw.Flush(); err != nil {
			return errDownstream
		}
		if resp.Status != 100 {
			s.informed = true
		}
		if resp.Status == 100 && !*bodySent {
			n, err := s.copyBody(cn.W, reqBody)
			*tx += n
			if err != nil {
				return err
			}
			*bodySent = true
			s.dc.restartUp()
		}
	}
}

// responseError maps a failure before the response head to a reply.
func responseError(err error) (int, Reason) {
	var pe *http1.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 504, ReasonUpstreamTimeout
	case errors.As(err, &pe):
		return 502, ReasonUpstreamProtocol
	}
	return 503, ReasonUpstreamReset
}

// respond runs the response edits and filters on s.resp.
func (s *conn1) respond(wc *router.WeightedCluster) {
	wc.ResponseHeaders.Apply(&s.resp.Header)
	s.x.Status = s.resp.Status
	s.x.ResponseHeaders = &s.resp.Header
	s.h.runResponseFilters(&s.x)
}

// tunnel copies bytes both ways after a 101 until both directions end.
func (s *conn1) tunnel(cn *upstream.Conn1) (rx, tx int64) {
	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(cn.Conn, s.br)
		closeWrite(cn.Conn)
		done <- n
	}()
	rx, _ = io.Copy(s.dc.Conn, cn.R)
	closeWrite(s.dc.Conn)
	tx = <-done
	return rx, tx
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// localReply answers the request itself: status, x-skein-reason for
// failures, a text body (body, or the reason's description), a Location
// when location is set, and edits. It reports whether the connection goes
// on: only when the request's body was read and the client did not ask to
// close.
func (s *conn1) localReply(status int, reason Reason, body []byte, edits router.HeaderEdits, location []byte) bool {
	req, resp := &s.req, &s.resp
	keep := !req.Close && s.bodyDone
	resp.Reset()
	resp.Proto = req.Proto
	resp.SetStatus(status, http.StatusText(status))
	var text string
	switch reason {
	case ReasonRedirect:
		resp.Header.AddBytes(locationName, location)
	case ReasonDirectResponse:
		if len(body) > 0 {
			resp.Header.Add("content-type", "text/plain")
		}
	default:
		if l := s.h.deps.Log.V(1); l.Enabled() {
			l.Info("local reply", "reason", string(reason), "status", status, "method", string(req.Method()),
				"authority", string(req.Authority()), "path", string(req.Path()), "cluster", s.x.Cluster, "source", s.src.String())
		}
		resp.Header.Add(HeaderReason, string(reason))
		resp.Header.Add("content-type", "text/plain")
		text = reason.describe()
		if s.x.reply.set && s.x.reply.body != "" {
			text = s.x.reply.body
		}
	}
	edits.Apply(&resp.Header)
	s.x.Status = status
	s.x.ResponseHeaders = &resp.Header
	s.h.runResponseFilters(&s.x)
	resp.Body = http1.Framing{Kind: http1.ContentLength, Length: int64(len(body) + len(text))}
	resp.Close = !keep
	err := http1.WriteResponseHead(s.bw, resp)
	if !req.MethodIs("HEAD") {
		s.bw.Write(body)
		s.bw.WriteString(text)
	}
	if err2 := s.bw.Flush(); err == nil {
		err = err2
	}
	return keep && err == nil
}

package httpproxy

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/skeinmesh/skein/sidecar/lb"
	"github.com/skeinmesh/skein/sidecar/router"
	"github.com/skeinmesh/skein/sidecar/upstream"
)

// The HTTP/2 downstream path: the server in server2.go runs the
// connection and calls ServeHTTP per stream, which routes with the same
// router and filters as HTTP/1 and forwards over HTTP/2 (streaming both
// ways, trailers kept: gRPC) or HTTP/1.1, as the cluster speaks.

// stream2 handles the streams of one HTTP/2 connection.
type stream2 struct {
	h        *Handler
	src, dst netip.AddrPort
}

func (p *stream2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := p.h
	start := time.Now()
	st2 := new(state2)
	view := &st2.view
	view.r = r
	x := &st2.x
	*x = Exchange{
		Request:        view,
		RequestHeaders: headers2(r.Header),
		Source:         p.src,
		Destination:    p.dst,
		GRPC:           isGRPC([]byte(r.Header.Get("Content-Type"))),
	}
	if t := h.table(); t != nil {
		x.Route = t.Route(view)
	}
	if !h.runRequestFilters(x) {
		p.reply(w, x, x.reply.status, x.reply.reason, nil, router.HeaderEdits{})
		return
	}
	rt := x.Route
	if rt == nil {
		p.reply(w, x, 404, ReasonNoRoute, nil, router.HeaderEdits{})
		return
	}
	switch rt.Action {
	case router.ActionRedirect:
		w.Header().Set("Location", string(rt.Location(nil, "http", view)))
		p.reply(w, x, rt.Redirect.Status, ReasonRedirect, nil, rt.ResponseHeaders)
		return
	case router.ActionDirectResponse:
		p.reply(w, x, rt.DirectResponse.Status, ReasonDirectResponse, rt.DirectResponse.Body, rt.ResponseHeaders)
		return
	}
	wc := rt.Pick(rand.Uint64())
	x.Cluster = wc.Name
	cl := h.deps.Clusters.Get(wc.Name)
	if cl == nil {
		p.reply(w, x, rt.ClusterNotFoundStatus, ReasonClusterNotFound, nil, rt.ResponseHeaders)
		return
	}
	st := h.stat(wc.Name)
	pc := upstream.PickContext{OriginalDst: p.dst}
	pc.Hash, pc.HasHash = rt.Hash(view, p.src.Addr())
	ctx := r.Context()
	var hard time.Time
	if rt.Timeout > 0 {
		hard = start.Add(rt.Timeout)
		// forward1 applies it as the upstream connection's deadline
		// (rs.hard); a context with a deadline (its timer and its
		// registration on the stream's context) is for HTTP/2 upstreams.
		if cl.Protocol() != upstream.HTTP11 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, hard)
			defer cancel()
		}
	}
	rs := &st2.rs
	rs.reset(rt.Retry, cl, hard)
	defer rs.release()
	host, err := rs.pick(cl, &pc)
	if err != nil {
		status, reason := upstreamReason(err)
		st.RequestDone(status, time.Since(start), 0, 0)
		p.reply(w, x, status, reason, nil, wc.ResponseHeaders)
		return
	}
	o, err := p.outbound(r, rt, wc)
	if err != nil {
		p.reply(w, x, 400, ReasonBadRequest, nil, router.HeaderEdits{})
		return
	}
	if o.Body == http.NoBody {
		o.Body = nil
	}
	out := o.WithContext(ctx) // the one copy on the heap
	var body *replayBody
	if rt.Retry != nil && out.Body != nil {
		body = newReplayBody(out.Body)
		defer body.free()
	}
	t := &st2.try
	*t = try2{rs: rs, body: body, conn: r.Context()}
	var status int
	var rx int64
	for {
		try := out
		if body != nil {
			try = new(http.Request)
			*try = *out
			try.Body = body.try()
		}
		host.Acquire()
		var retry bool
		if cl.Protocol() == upstream.HTTP11 {
			status, rx, retry = p.forward1(w, x, cl, host, try, wc, t)
		} else {
			status, rx, retry = p.forward2(w, x, cl, host, try, wc, t)
		}
		host.Release()
		if !retry {
			break
		}
		if !rs.sleep(r.Context()) {
			st.RequestDone(0, time.Since(start), 0, 0)
			return // the client went away
		}
		if host, err = rs.pick(cl, &pc); err != nil {
			status, reason := upstreamReason(err)
			st.RequestDone(status, time.Since(start), 0, 0)
			p.reply(w, x, status, reason, nil, wc.ResponseHeaders)
			return
		}
	}
	st.RequestDone(status, time.Since(start), rx, 0)
}

// state2 is the state of one request of ServeHTTP, in one allocation.
type state2 struct {
	view request2
	x    Exchange
	rs   retryState
	try  try2
}

// try2 is what an HTTP/2 stream's try needs to decide on a retry.
type try2 struct {
	rs   *retryState
	body *replayBody     // nil: no body, or no retry policy
	conn context.Context // the downstream request's
}

// retries reports whether the request is retried after a try on host that
// failed with f (0: a response the policy retries): the policy retries f
// (then host is marked, retryState.markFailed), a
// retry can happen (retryState.mayRetry) and the body can be sent again.
func (t *try2) retries(f failure, host *lb.Host) bool {
	rs := t.rs
	if rs.p == nil || (f != 0 && f != failPeerConnect && !retriesFailure(rs.p.On, f)) {
		return false
	}
	rs.failed(f, host)
	if t.body != nil && !t.body.replayable() {
		return false
	}
	return rs.mayRetry()
}

// outbound is the request to send upstream: r with the route's rewrites,
// header edits and the connection manager's headers.
func (p *stream2) outbound(r *http.Request, rt *router.Route, wc *router.WeightedCluster) (http.Request, error) {
	h := p.h
	// The server made r.Header for this request alone: edited in place,
	// as the HTTP/1 path edits its request head.
	hdr := r.Header
	if hdr == nil {
		hdr = http.Header{}
	}
	stripHopByHop(hdr)
	authority := r.Host
	if wc.HostRewrite != "" {
		authority = wc.HostRewrite
	}
	u := &url.URL{Scheme: "http", Host: authority, RawQuery: r.URL.RawQuery}
	u.Path, u.RawPath = r.URL.Path, r.URL.RawPath
	if np, ok := rt.RewritePath(nil, []byte(r.URL.EscapedPath())); ok {
		pu, err := url.Parse(string(np))
		if err != nil {
			return http.Request{}, err
		}
		u.Path, u.RawPath = pu.Path, pu.RawPath
	}
	hs := headers2(hdr)
	wc.RequestHeaders.Apply(hs)
	hdr.Del("X-Forwarded-Client-Cert")
	if h.UseRemoteAddress {
		hdr.Set("X-Forwarded-Proto", "http")
		xff := p.src.Addr().String()
		if v := hdr.Values("X-Forwarded-For"); len(v) > 0 {
			xff = strings.Join(v, ", ") + ", " + xff
		}
		hdr.Set("X-Forwarded-For", xff)
	} else if hdr.Get("X-Forwarded-Proto") == "" {
		hdr["X-Forwarded-Proto"] = xfpHTTP[:1:1] // appending copies it
	}
	if h.GenerateRequestID && hdr.Get("X-Request-Id") == "" {
		var b [36]byte
		hdr.Set("X-Request-Id", string(newRequestID(&b)))
	}
	return http.Request{
		Method:        r.Method,
		URL:           u,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        hdr,
		Host:          authority,
		ContentLength: r.ContentLength,
		Body:          r.Body,
		Trailer:       r.Trailer,
	}, nil
}

// xfpHTTP is the value of an X-Forwarded-Proto the proxy adds.
var xfpHTTP = []string{"http"}

// forward2 streams the exchange over an HTTP/2 connection: the request body
// as the client sends it, the response body flushed as it arrives, then
// the trailers. retry reports a try that the route's retry policy retries,
// nothing sent downstream.
func (p *stream2) forward2(w http.ResponseWriter, x *Exchange, cl *upstream.Cluster, host *lb.Host, out *http.Request, wc *router.WeightedCluster, t *try2) (int, int64, bool) {
	cc, err := cl.HTTP2(out.Context(), host)
	if err != nil {
		if t.retries(failureOf(err), host) {
			return 0, 0, true
		}
		status, reason := upstreamReason(err)
		return p.reply(w, x, status, reason, nil, wc.ResponseHeaders), 0, false
	}
	ctx, perTry := t.rs.tryContext(out.Context())
	defer perTry.end()
	resp, err := cc.RoundTrip(out.WithContext(ctx))
	if err != nil {
		if t.retries(t.rs.roundTripFailure(t.conn, err, perTry), host) {
			return 0, 0, true
		}
		status, reason := roundTripError(out.Context(), err)
		return p.reply(w, x, status, reason, nil, wc.ResponseHeaders), 0, false
	}
	perTry.stop()
	defer resp.Body.Close()
	if t.retriesResponse(resp, host) {
		return 0, 0, true
	}
	status, rx := p.copyResponse(w, x, resp, wc)
	return status, rx, false
}

// retriesResponse reports whether a response head is retried.
func (t *try2) retriesResponse(resp *http.Response, host *lb.Host) bool {
	return t.rs.p != nil && retriesResponse(t.rs.p, resp.StatusCode, grpcStatusOf(resp.Header.Get("Grpc-Status"))) && t.retries(responseFailure(resp.Header.Get(HeaderReason)), host)
}

// forward1 sends the request over an HTTP/1.1 connection of the cluster's
// pool with net/http's codec. The route's timeout (t.rs.hard) is the
// connection's deadline; the end of the try's context (the client reset
// the stream, or the per-try timeout) moves it to the past.
//
// A bodiless idempotent request takes its connection with
// HTTP1Replayable (no liveness system call for a connection idle less
// than upstream.ReplayPeekAfter) and is resent once, on a connection from
// HTTP1, when a reused connection fails before the response head, as the
// HTTP/1 path does.
func (p *stream2) forward1(w http.ResponseWriter, x *Exchange, cl *upstream.Cluster, host *lb.Host, out *http.Request, wc *router.WeightedCluster, t *try2) (int, int64, bool) {
	replayable := out.Body == nil && idempotentMethod(out.Method)
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // net/http adds its own otherwise
	}
	ctx, perTry := t.rs.tryContext(out.Context())
	defer perTry.end()
	for attempt := 0; ; attempt++ {
		var cn *upstream.Conn1
		var err error
		if replayable && attempt == 0 {
			cn, err = cl.HTTP1Replayable(ctx, host) // resent below if it was stale
		} else {
			cn, err = cl.HTTP1(ctx, host)
		}
		if err != nil {
			if t.retries(failureOf(err), host) {
				return 0, 0, true
			}
			status, reason := upstreamReason(err)
			return p.reply(w, x, status, reason, nil, wc.ResponseHeaders), 0, false
		}
		status, rx, retry, stale := p.exchange1(w, x, cn, host, out, wc, t, ctx, perTry, replayable && attempt == 0)
		if !stale {
			return status, rx, retry
		}
	}
}

// exchange1 is one exchange of forward1 on cn, which it releases. stale
// reports a reused connection that failed before the response head, for
// forward1 to resend the request on another (only when resend is set).
func (p *stream2) exchange1(w http.ResponseWriter, x *Exchange, cn *upstream.Conn1, host *lb.Host, out *http.Request, wc *router.WeightedCluster, t *try2, ctx context.Context, perTry *tryTimer, resend bool) (status int, rx int64, retry, stale bool) {
	if hard := t.rs.hard; !hard.IsZero() {
		cn.SetDeadline(hard)
	}
	stop := registerAfter(ctx, func() { cn.SetDeadline(time.Unix(1, 0)) })
	reusable := false
	defer func() {
		if stop() {
			cn.SetDeadline(time.Time{})
		} else {
			reusable = false
		}
		cn.Release(reusable)
	}()
	err := writeRequest1(cn.W, out)
	if err == nil {
		err = cn.W.Flush()
	}
	resp, err := readResponse1(cn.R, out)
	if err != nil {
		timedOut := errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil
		if resend && cn.Reused() && ctx.Err() == nil && !timedOut {
			return 0, 0, false, true // the server closed an idle connection as we reused it
		}
		if t.retries(t.rs.roundTripFailure(t.conn, err, perTry), host) {
			return 0, 0, true, false
		}
		status, reason := roundTripError(ctx, err)
		switch {
		case timedOut:
			status, reason = 504, ReasonUpstreamTimeout // the route's timeout
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			status, reason = 503, ReasonUpstreamReset
		}
		return p.reply(w, x, status, reason, nil, wc.ResponseHeaders), 0, false, false
	}
	perTry.stop()
	if t.retriesResponse(resp, host) {
		// Read a small rest to keep the connection, as conn1.discard.
		if resp.ContentLength >= 0 && resp.ContentLength <= discardLimit {
			_, err := io.Copy(io.Discard, resp.Body)
			reusable = err == nil && !resp.Close
		}
		resp.Body.Close()
		return 0, 0, true, false
	}
	status, rx = p.copyResponse(w, x, resp, wc)
	reusable = !resp.Close && resp.Body.Close() == nil && status != 0
	return status, rx, false, false
}

// registerAfter is context.AfterFunc, registering f on a context that has an
// AfterFunc method of its own (the stream's, streamCtx) directly: three
// allocations rather than seven (context.AfterFunc wraps f in a context of
// its own, registered on ctx).
func registerAfter(ctx context.Context, f func()) (stop func() bool) {
	if af, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return af.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// idempotentMethod reports whether a request with method may be sent
// twice (RFC 9110 9.2.2); the switch on a converted []byte allocates
// nothing, so the HTTP/1 path uses it too (idempotent).
func idempotentMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// copyResponse sends resp downstream: head (with the route's edits and the
// filters'), body flushed as it arrives, trailers.
//
// A response known to have no body (the upstream's HEADERS frame ended the
// stream, or Content-Length: 0), or whose Content-Length worth of body the
// first read brings, is not flushed after its head (so head and body go
// out in one write with END_STREAM): net/http's
// HTTP/2 server then sends the head with END_STREAM when the handler
// returns, so a gRPC trailers-only response (an error before any message:
// grpc-status and the trailer metadata in the one HEADERS frame) stays
// trailers-only. Flushing it would send HEADERS without END_STREAM and end
// the stream with an empty DATA frame: grpc-status in headers, no
// trailers, which gRPC clients report as Internal.
func (p *stream2) copyResponse(w http.ResponseWriter, x *Exchange, resp *http.Response, wc *router.WeightedCluster) (int, int64) {
	var hdr http.Header
	if hw, ok := w.(*h2writer); ok && len(hw.hdr) == 0 && resp.Header != nil {
		hw.hdr, hdr = resp.Header, resp.Header // ours alone: no copy
	} else {
		hdr = w.Header()
		for k, vs := range resp.Header {
			hdr[k] = vs
		}
	}
	stripHopByHop(hdr)
	for k := range resp.Trailer {
		hdr.Add("Trailer", k)
	}
	wc.ResponseHeaders.Apply(headers2(hdr))
	x.Status = resp.StatusCode
	x.ResponseHeaders = headers2(hdr)
	p.h.runResponseFilters(x)
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	// A body of unknown length (a gRPC stream) may take its time: the head
	// goes now. One of known length usually arrives in the first read: the
	// head then goes out with it (and with END_STREAM when the handler
	// returns), not flushed on its own.
	if resp.ContentLength < 0 {
		rc.Flush()
	}
	n, err := resp.Body.Read(buf)
	if err == nil && resp.ContentLength > 0 && !bodyDone(resp, n) {
		rc.Flush()
	}
	var rx int64
	for {
		if n > 0 {
			rx += int64(n)
			if _, werr := w.Write(buf[:n]); werr != nil {
				return resp.StatusCode, rx
			}
			if err == nil && !bodyDone(resp, int(rx)) {
				rc.Flush()
			}
		}
		if err == nil && bodyDone(resp, int(rx)) {
			// Read the EOF (and the trailers before it) without
			// a flush in between.
			n, err = resp.Body.Read(buf)
			continue
		}
		if err == io.EOF {
			break
		}
		if err == nil {
			n, err = resp.Body.Read(buf)
			continue
		}
		// The response was cut: reset the stream rather than end it
		// cleanly, so the client sees the failure.
		panic(http.ErrAbortHandler)
	}
	for k, vs := range resp.Trailer {
		for _, v := range vs {
			hdr.Add(http.TrailerPrefix+k, v)
		}
	}
	return resp.StatusCode, rx
}

// copyBufs hold the buffers copyResponse copies bodies with.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// bodyDone reports whether n bytes are all of resp's body, as its
// Content-Length says.
func bodyDone(resp *http.Response, n int) bool {
	return resp.ContentLength >= 0 && int64(n) >= resp.ContentLength
}

// roundTripError maps a failure before the response head to a reply.
func roundTripError(ctx context.Context, err error) (int, Reason) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return 504, ReasonUpstreamTimeout
	}
	return responseError(err)
}

// reply answers an HTTP/2 request itself; a gRPC request gets a gRPC
// status (HTTP 200, grpc-status, grpc-message) that gRPC clients report.
func (p *stream2) reply(w http.ResponseWriter, x *Exchange, status int, reason Reason, body []byte, edits router.HeaderEdits) int {
	hdr := w.Header()
	text := ""
	switch reason {
	case ReasonRedirect:
	case ReasonDirectResponse:
		if len(body) > 0 {
			hdr.Set("Content-Type", "text/plain")
		}
	default:
		if l := p.h.deps.Log.V(1); l.Enabled() {
			l.Info("local reply", "reason", string(reason), "status", status, "grpc", x.GRPC,
				"path", string(x.Request.Path()), "cluster", x.Cluster, "source", p.src.String())
		}
		hdr.Set(HeaderReason, string(reason))
		text = reason.describe()
		if x.reply.set && x.reply.body != "" {
			text = x.reply.body
		}
		if x.GRPC {
			hdr.Set("Content-Type", "application/grpc")
			hdr.Set("Grpc-Status", grpcStatus(reason))
			hdr.Set("Grpc-Message", strings.TrimSuffix(text, "\n"))
			status, text = 200, ""
		} else {
			hdr.Set("Content-Type", "text/plain")
		}
	}
	edits.Apply(headers2(hdr))
	x.Status = status
	x.ResponseHeaders = headers2(hdr)
	p.h.runResponseFilters(x)
	if len(body)+len(text) > 0 {
		hdr.Set("Content-Length", itoa(len(body)+len(text)))
	}
	w.WriteHeader(status)
	w.Write(body)
	io.WriteString(w, text)
	return status
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

// hopByHop are the fields that concern one connection only.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization"}

// stripHopByHop removes hop-by-hop fields and those Connection names; TE
// stays only as "trailers".
func stripHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopByHop {
		delete(h, k) // canonical already
	}
	if te := h["Te"]; len(te) > 0 {
		delete(h, "Te")
		for _, v := range te {
			if strings.Contains(strings.ToLower(v), "trailers") {
				h.Set("Te", "trailers")
			}
		}
	}
}

// headers2 adapts an http.Header to router.Headers.
type headers2 http.Header

func (h headers2) Has(name string) bool   { _, ok := h[http.CanonicalHeaderKey(name)]; return ok }
func (h headers2) Set(name, value string) { http.Header(h).Set(name, value) }
func (h headers2) Add(name, value string) { http.Header(h).Add(name, value) }
func (h headers2) Del(name string)        { http.Header(h).Del(name) }

var _ router.Headers = headers2(nil)

// request2 is router.Request over an HTTP/2 request; path and authority
// are converted once.
type request2 struct {
	r         *http.Request
	path      []byte
	authority []byte
}

var _ router.Request = (*request2)(nil)

func (q *request2) Method() []byte { return []byte(q.r.Method) }
func (q *request2) Authority() []byte {
	if q.authority == nil {
		q.authority = []byte(q.r.Host)
	}
	return q.authority
}
func (q *request2) Path() []byte {
	if q.path != nil {
		return q.path
	}
	u := q.r.RequestURI
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	if u == "" {
		u = q.r.URL.EscapedPath()
	}
	q.path = []byte(u)
	return q.path
}
func (q *request2) Query() []byte {
	if i := strings.IndexByte(q.r.RequestURI, '?'); i >= 0 {
		return []byte(q.r.RequestURI[i+1:])
	}
	return nil
}
func (q *request2) Header(name string) ([]byte, bool) {
	switch name {
	case ":path":
		return []byte(q.r.RequestURI), true
	case ":scheme":
		return []byte("http"), true
	}
	vs, ok := q.r.Header[http.CanonicalHeaderKey(name)]
	if !ok || len(vs) == 0 {
		return nil, false
	}
	return []byte(vs[0]), true
}

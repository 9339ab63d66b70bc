package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/skeinmesh/skein/sidecar/lb"
	"github.com/skeinmesh/skein/sidecar/router"
	"github.com/skeinmesh/skein/sidecar/upstream"
)

// Retries: the route's retry policy (router.RetryPolicy) decides which
// failures of a try are retried; retryState keeps one request's tries. The
// forwarding paths ask mayRetry before answering a failure themselves: a
// retry needs retries left, a request body that can be sent again, nothing
// of the response sent downstream, time left before the route's timeout,
// and room under the cluster's max_retries or retry budget.

// RetryBufferLimit is how much of a request body is kept for resending it
// on a retry: Envoy's per_connection_buffer_limit_bytes default, 1 MiB. A
// request whose body is larger is not retried once its body started to
// go upstream.
const RetryBufferLimit = 1 << 20

// maxTried is how many hosts a request remembers for previous_hosts; a
// policy with more retries forgets the oldest.
const maxTried = 8

// failure is how a try failed before a response head arrived.
type failure uint8

const (
	// failConnect: the connection could not be established (refused,
	// failed, connect_timeout).
	failConnect failure = iota + 1
	// failResetBeforeRequest: the connection failed while the request was
	// being sent.
	failResetBeforeRequest
	// failReset: the connection failed after the request was sent, before
	// the response head.
	failReset
	// failRefusedStream: the HTTP/2 upstream refused the stream
	// (REFUSED_STREAM).
	failRefusedStream
	// failProtocol: the response head was not valid HTTP.
	failProtocol
	// failPerTryTimeout: the try's per_try_timeout passed before its
	// response head.
	failPerTryTimeout
	// failPeerConnect: not a failure of the try's own but a response the
	// policy retries that is a peer skein-proxy's local reply saying it
	// could not connect to its app (x-skein-reason
	// upstream_connect_failure): the request reached no application.
	failPeerConnect
)

// MaxUnprocessedRetries is how many retries beyond the policy's
// num_retries a request gets when its tries provably reached no
// application: a connection that could not be made, a stream the upstream
// refused, or a peer proxy's upstream_connect_failure. Resending such a
// request is as safe as the first send (grpc-go's transparent retry
// rests on the same fact). It is what keeps a scale-down from failing
// requests: three pods of four stopping at once answer 503
// upstream_connect_failure until the caller's EDS drops them, and with
// Istio's two retries one request in four that meets the first of them
// spends all its tries on the three. Only while the cluster has a host the
// request has not tried; the back-off and the route's timeout still apply.
const MaxUnprocessedRetries = 4

// responseFailure is failPeerConnect for a peer proxy's
// upstream_connect_failure (reason: the response's x-skein-reason), else
// 0: what a retried response passes to the forwarding path's retries.
func responseFailure[T string | []byte](reason T) failure {
	if string(reason) == string(ReasonConnectFailure) {
		return failPeerConnect
	}
	return 0
}

// retriesFailure reports whether a try that failed with f is retried under
// on, as Envoy's RetryStateImpl::wouldRetryFromReset: 5xx, gateway-error
// and reset retry every failure; connect-failure only connection
// failures; reset-before-request those before the request went out;
// refused-stream REFUSED_STREAM.
func retriesFailure(on router.RetryOn, f failure) bool {
	if on&(router.Retry5xx|router.RetryGatewayError|router.RetryReset) != 0 {
		return true
	}
	switch f {
	case failConnect:
		return on&(router.RetryConnectFailure|router.RetryResetBeforeRequest) != 0
	case failResetBeforeRequest:
		return on.Has(router.RetryResetBeforeRequest)
	case failRefusedStream:
		return on&(router.RetryRefusedStream|router.RetryResetBeforeRequest) != 0
	}
	return false
}

// retriesResponse reports whether a response with status and grpc-status
// grpcStatus (in its head: a trailers-only gRPC response; nil when
// absent) is retried under p.
func retriesResponse(p *router.RetryPolicy, status int, grpcStatus []byte) bool {
	if p.Retries(status) {
		return true
	}
	if len(grpcStatus) == 0 || p.On&grpcConditions == 0 {
		return false
	}
	code := 0
	for _, c := range grpcStatus {
		if c < '0' || c > '9' || code > 1000 {
			return false
		}
		code = code*10 + int(c-'0')
	}
	return p.GRPCRetries(code)
}

const grpcConditions = router.RetryGRPCCancelled | router.RetryGRPCDeadlineExceeded |
	router.RetryGRPCInternal | router.RetryGRPCResourceExhausted | router.RetryGRPCUnavailable

// retryState is one request's retry bookkeeping. The zero value (or a nil
// policy) retries nothing.
type retryState struct {
	p       *router.RetryPolicy
	cl      *upstream.Cluster
	done    uint32 // retries made, of the policy's num_retries
	free    uint32 // retries made beyond them (MaxUnprocessedRetries)
	unproc  bool   // the last try reached no application (see failed)
	tried   [maxTried]*lb.Host
	ntried  int
	hard    time.Time     // the route's timeout; zero: none
	holding bool          // counted in the cluster's active retries
	backOff time.Duration // the wait before the next retry
}

// reset starts a request under p (nil: no retries) on cluster cl.
func (rs *retryState) reset(p *router.RetryPolicy, cl *upstream.Cluster, hard time.Time) {
	rs.release()
	*rs = retryState{p: p, cl: cl, hard: hard}
}

// release ends the request's hold on the cluster's active retries.
func (rs *retryState) release() {
	if rs.holding {
		rs.holding = false
		activeRetries(rs.cl.Name()).Add(-1)
	}
}

// left reports whether the policy allows another retry: one of its
// num_retries, or, after a try that reached no application, one of
// MaxUnprocessedRetries.
func (rs *retryState) left() bool {
	return rs.p != nil && (rs.done < rs.p.NumRetries || rs.freeLeft())
}

// freeLeft reports whether the last try reached no application and a
// retry beyond num_retries is left, with a host not tried yet to take it:
// a single host is not asked again and again.
func (rs *retryState) freeLeft() bool {
	return rs.unproc && rs.free < MaxUnprocessedRetries && rs.ntried < rs.cl.HostCount()
}

// failed notes how the last try failed (f as the forwarding paths'
// retries get it) and marks its host (markFailed).
func (rs *retryState) failed(f failure, h *lb.Host) {
	rs.unproc = f == failConnect || f == failRefusedStream || f == failPeerConnect
	rs.markFailed(h)
}

// remember records h as tried.
func (rs *retryState) remember(h *lb.Host) {
	rs.tried[rs.ntried%maxTried] = h
	rs.ntried++
}

func (rs *retryState) wasTried(h *lb.Host) bool {
	for i := range min(rs.ntried, maxTried) {
		if rs.tried[i] == h {
			return true
		}
	}
	return false
}

// pick picks the host of the next try and remembers it. Under
// previous_hosts, Envoy's predicate (a retry re-picks, up to
// HostSelectionMaxAttempts times, at least once, while the balancer returns
// a host this request already tried, and then keeps the last pick) is
// extended to hosts that failed a try of any request in the last
// FailedHostAvoidance, for first tries too: see markFailed. Hash-based
// balancers get a different key for each re-pick (Envoy walks the ring).
func (rs *retryState) pick(cl *upstream.Cluster, pc *upstream.PickContext) (*lb.Host, error) {
	h, err := cl.Pick(pc)
	if err == nil && rs.p != nil && rs.p.PreviousHosts {
		now := time.Now().UnixNano()
		hash := pc.Hash
		for i := uint32(0); i < max(rs.p.HostSelectionMaxAttempts, 1) && (rs.wasTried(h) || h.FailedAt(now)); i++ {
			if pc.HasHash {
				pc.Hash = mix(hash + uint64(rs.done)<<32 + uint64(i) + 1)
			}
			if h, err = cl.Pick(pc); err != nil {
				break
			}
		}
		pc.Hash = hash
	}
	if err == nil {
		rs.remember(h)
	}
	return h, err
}

// FailedHostAvoidance is how long a host whose try failed in a way the
// route's policy retries is avoided by picks under previous_hosts. It is
// what lets a scale-down lose nothing: several pods that stopped at once
// answer 503 (their inbound proxies' upstream_connect_failure) until the
// caller's EDS drops them, a window of a few hundred milliseconds, and
// previous_hosts alone lets a request spend its tries on three of them.
// Envoy has no such mark (outlier detection, when configured, ejects after
// consecutive failures); a host marked by a passing 503 costs only a few
// re-picks, and one that is the only choice is still picked.
const FailedHostAvoidance = time.Second

// markFailed marks the host of a try that failed in a way the policy
// retries (whether or not a retry is left).
func (rs *retryState) markFailed(h *lb.Host) {
	if rs.p != nil && rs.p.PreviousHosts {
		h.SetFailedUntil(time.Now().Add(FailedHostAvoidance).UnixNano())
	}
}

// mix is SplitMix64's finaliser: a re-pick's hash key.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// mayRetry reports whether a try that failed may be retried, leaving the
// policy's questions (is this failure retried?) to the caller: retries
// left, the back-off ending before the route's timeout, and room under the
// cluster's retry circuit breaker. It draws the back-off sleep waits.
func (rs *retryState) mayRetry() bool {
	if !rs.left() {
		return false
	}
	rs.backOff = rs.p.BackOff(int(rs.done+rs.free)+1, rand.Float64())
	if !rs.hard.IsZero() && !time.Now().Add(rs.backOff).Before(rs.hard) {
		return false
	}
	return rs.holding || retryAllowed(rs.cl)
}

// sleep counts the retry mayRetry allowed and waits its back-off. It
// reports false when ctx (the downstream connection's) ended first.
func (rs *retryState) sleep(ctx context.Context) bool {
	if !rs.holding {
		rs.holding = true
		activeRetries(rs.cl.Name()).Add(1)
	}
	if rs.done >= rs.p.NumRetries && rs.freeLeft() {
		rs.free++
	} else {
		rs.done++
	}
	if rs.backOff <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(rs.backOff)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// tryDeadline is the deadline of one try starting at now: the route's,
// or the policy's per_try_timeout when that comes first. perTry says the
// latter.
func (rs *retryState) tryDeadline(now time.Time) (d time.Time, perTry bool) {
	d = rs.hard
	if rs.p != nil && rs.p.PerTryTimeout > 0 {
		if t := now.Add(rs.p.PerTryTimeout); d.IsZero() || t.Before(d) {
			return t, true
		}
	}
	return d, false
}

// tryTimer is a try's per_try_timeout over a context: its context is
// cancelled when the timeout passes before stop. A nil *tryTimer (no
// per-try timeout) does nothing.
type tryTimer struct {
	t      *time.Timer
	cancel context.CancelFunc
	fired  atomic.Bool
}

// tryContext is the context of one try: ctx, cancelled at the per-try
// timeout if the policy has one that ends before the route's timeout.
// Call end when the try is over.
func (rs *retryState) tryContext(ctx context.Context) (context.Context, *tryTimer) {
	d, perTry := rs.tryDeadline(time.Now())
	if !perTry {
		return ctx, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	tt := &tryTimer{cancel: cancel}
	tt.t = time.AfterFunc(time.Until(d), func() {
		tt.fired.Store(true)
		cancel()
	})
	return ctx, tt
}

// stop ends the per-try timeout (the response head arrived).
func (tt *tryTimer) stop() {
	if tt != nil {
		tt.t.Stop()
	}
}

// end releases the try's context.
func (tt *tryTimer) end() {
	if tt != nil {
		tt.t.Stop()
		tt.cancel()
	}
}

// roundTripFailure classifies the error of an HTTP/2 round trip (or an
// HTTP/1 exchange through net/http's codec); conn is the downstream
// request's context.
func (rs *retryState) roundTripFailure(conn context.Context, err error, tt *tryTimer) failure {
	var se http2.StreamError
	var ue *upstream.Error
	switch {
	case tt != nil && tt.fired.Load():
		return failPerTryTimeout
	case conn.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return 0
	case errors.As(err, &ue):
		return failureOf(err)
	case errors.As(err, &se) && se.Code == http2.ErrCodeRefusedStream, unprocessed(err):
		return failRefusedStream
	}
	return failReset
}

// unprocessed reports whether an HTTP/2 round trip failed before the
// server took the stream: the connection was closing (a graceful GOAWAY
// whose last stream ID is below it, or the connection no longer usable).
// Envoy resets such streams as refused (REFUSED_STREAM), which is what they
// are; x/net's errors for them are unexported, hence their text.
func unprocessed(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "http2: Transport received Server's graceful shutdown GOAWAY") ||
		strings.Contains(msg, "http2: client conn not usable") ||
		strings.Contains(msg, "http2: client conn is closed")
}

// The clusters' retries in flight, by cluster name, for circuit_breakers
// max_retries and retry_budget. A request holds one from its first retry
// to its end.
var retriesInFlight sync.Map // string -> *atomic.Int64

func activeRetries(cluster string) *atomic.Int64 {
	if v, ok := retriesInFlight.Load(cluster); ok {
		return v.(*atomic.Int64)
	}
	v, _ := retriesInFlight.LoadOrStore(cluster, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// retryAllowed reports whether cl's circuit breaker (the DEFAULT priority's
// thresholds) allows one more request to retry: under max_retries when it
// is set, or under the retry budget (budget_percent, default 20%, of the
// cluster's requests in flight, at least min_retry_concurrency, default 3)
// when one is set. A cluster with neither is not limited, where Envoy
// applies max_retries 3: Istio, whose default retry policy the control
// plane gives every route, sets max_retries to 2^32-1 for the same reason.
func retryAllowed(cl *upstream.Cluster) bool {
	cb := cl.Policies().CircuitBreakers
	if cb == nil {
		return true
	}
	for _, t := range cb.GetThresholds() {
		if t.GetPriority() != 0 { // DEFAULT
			continue
		}
		active := activeRetries(cl.Name()).Load()
		if m := t.GetMaxRetries(); m != nil {
			return active < int64(m.GetValue())
		}
		if b := t.GetRetryBudget(); b != nil {
			pct := 20.0
			if b.GetBudgetPercent() != nil {
				pct = b.GetBudgetPercent().GetValue()
			}
			minC := int64(3)
			if b.GetMinRetryConcurrency() != nil {
				minC = int64(b.GetMinRetryConcurrency().GetValue())
			}
			var inFlight int64
			for _, h := range cl.Hosts() {
				inFlight += h.Active()
			}
			return active < max(minC, int64(pct/100*float64(inFlight)))
		}
	}
	return true
}

// replayBody is a request body that tries on the HTTP/2 paths (an HTTP/2
// downstream's, or an HTTP/1 one's re-framed for an HTTP/2 upstream) read
// through their own reader (try). One goroutine (the pump) reads src as
// the tries want it and keeps what it read, up to RetryBufferLimit, so a
// retry can start over from the first byte even while the client is still
// sending; past the limit the bytes are handed to the try that reads then
// and not kept, and the body can no longer be sent again. No try reads src
// itself, so a try that ended cannot hold a read of it.
type replayBody struct {
	src  io.ReadCloser
	mu   sync.Mutex
	cond sync.Cond
	buf  []byte // the body's first bytes, kept
	// extra is a chunk past the limit waiting for the live try; over says
	// there was one.
	extra   []byte
	over    bool
	eof     bool  // src ended cleanly after buf (and extra)
	err     error // src failed, or the body was abandoned past the limit
	live    *tryBody
	started bool // the pump runs
	stopped bool // free was called
}

var replayPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func newReplayBody(src io.ReadCloser) *replayBody {
	rb := &replayBody{src: src, buf: (*replayPool.Get().(*[]byte))[:0]}
	rb.cond.L = &rb.mu
	return rb
}

var errAbandoned = errors.New("request body past the retry buffer limit abandoned by its try")

// pump reads src into buf (or extra) until it ends.
func (rb *replayBody) pump() {
	chunk := make([]byte, 32<<10)
	for {
		rb.mu.Lock()
		for rb.over && len(rb.extra) > 0 && !rb.stopped && rb.live != nil {
			rb.cond.Wait()
		}
		if rb.stopped || (rb.over && rb.live == nil) {
			if rb.err == nil && !rb.eof {
				rb.err = errAbandoned
			}
			rb.cond.Broadcast()
			rb.mu.Unlock()
			rb.src.Close() // unblocks a writer into src (a pipe)
			return
		}
		rb.mu.Unlock()
		n, err := rb.src.Read(chunk)
		rb.mu.Lock()
		if n > 0 {
			if !rb.over && len(rb.buf)+n <= RetryBufferLimit {
				rb.buf = append(rb.buf, chunk[:n]...)
			} else {
				rb.over = true
				rb.extra = append(rb.extra[:0], chunk[:n]...)
			}
		}
		switch {
		case err == io.EOF:
			rb.eof = true
		case err != nil:
			rb.err = err
		}
		rb.cond.Broadcast()
		done := err != nil
		rb.mu.Unlock()
		if done {
			return
		}
	}
}

// free stops the pump and returns the buffer to the pool; call it when
// the request is over.
func (rb *replayBody) free() {
	rb.mu.Lock()
	rb.stopped = true
	rb.cond.Broadcast()
	if !rb.started && cap(rb.buf) <= RetryBufferLimit {
		b := rb.buf[:0]
		replayPool.Put(&b) // a running pump may still append: its buffer is dropped
	}
	rb.mu.Unlock()
}

// replayable reports whether a new try can send the whole body: what was
// read of it is all kept.
func (rb *replayBody) replayable() bool {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return !rb.over && (rb.err == nil || rb.eof)
}

// complete waits for the body to end and reports whether it did cleanly.
func (rb *replayBody) complete() bool {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	rb.start()
	for !rb.eof && rb.err == nil {
		rb.cond.Wait()
	}
	return rb.eof
}

// start starts the pump; mu is held.
func (rb *replayBody) start() {
	if !rb.started {
		rb.started = true
		go rb.pump()
	}
}

// try returns the body of a new try, which becomes the live one: it reads
// from the first byte.
func (rb *replayBody) try() *tryBody {
	t := &tryBody{rb: rb}
	rb.mu.Lock()
	rb.live = t
	rb.cond.Broadcast()
	rb.mu.Unlock()
	return t
}

// tryBody is one try's reader of a replayBody.
type tryBody struct {
	rb  *replayBody
	off int // the next byte of buf to read
}

func (t *tryBody) Read(p []byte) (int, error) {
	rb := t.rb
	rb.mu.Lock()
	defer rb.mu.Unlock()
	rb.start()
	for {
		switch {
		case rb.live != t:
			return 0, errTryClosed
		case t.off < len(rb.buf):
			n := copy(p, rb.buf[t.off:])
			t.off += n
			return n, nil
		case len(rb.extra) > 0:
			n := copy(p, rb.extra)
			rb.extra = rb.extra[n:]
			if len(rb.extra) == 0 {
				rb.cond.Broadcast() // the pump may read on
			}
			return n, nil
		case rb.eof:
			return 0, io.EOF
		case rb.err != nil:
			return 0, rb.err
		}
		rb.cond.Wait()
	}
}

// Close ends this try's reads (the transport closes a request body when
// it is done with it); the body stays for a retry.
func (t *tryBody) Close() error {
	rb := t.rb
	rb.mu.Lock()
	if rb.live == t {
		rb.live = nil
	}
	rb.cond.Broadcast()
	rb.mu.Unlock()
	return nil
}

// errGaveUp cuts a request body no retry will send.
var errGaveUp = errors.New("no retry left for this request")

var errTryClosed = errors.New("request body of a try that ended")

// keptBody1 is an HTTP/1 request body kept, up to RetryBufferLimit, as it
// goes upstream (Write passes it on to w), for a retry to send it again.
type keptBody1 struct {
	keep     bool // keep a copy: the request may be retried
	started  bool // some of the body was read from the client
	complete bool // all of it was sent, and buf holds it
	over     bool // it outgrew RetryBufferLimit
	buf      []byte
	w        io.Writer
}

// reset starts a request; keep says whether its body is kept.
func (k *keptBody1) reset(keep bool) {
	*k = keptBody1{keep: keep, buf: k.buf[:0]}
}

// free returns a large buffer to the pool.
func (k *keptBody1) free() {
	if cap(k.buf) > 16<<10 {
		b := k.buf[:0]
		replayPool.Put(&b)
		k.buf = nil
	}
}

func (k *keptBody1) Write(p []byte) (int, error) {
	if !k.over {
		if len(k.buf)+len(p) > RetryBufferLimit {
			k.over = true
		} else {
			if k.buf == nil {
				k.buf = (*replayPool.Get().(*[]byte))[:0]
			}
			k.buf = append(k.buf, p...)
		}
	}
	if bw, ok := k.w.(*bufio.Writer); ok {
		// Whatever reaches here was flushed by CopyBody's own writer: pass
		// it on now, so that a slow body still streams.
		n, err := bw.Write(p)
		if err == nil {
			err = bw.Flush()
		}
		return n, err
	}
	return k.w.Write(p)
}

// grpcStatusOf is a grpc-status field's value for retriesResponse.
func grpcStatusOf(v string) []byte {
	if v == "" {
		return nil
	}
	return []byte(v)
}

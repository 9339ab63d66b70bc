package httpproxy

// HTTP/1 downstream to an HTTP/2 upstream (conn1.forward2); the HTTP/1
// downstream itself is http1.go.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/skeinmesh/skein/sidecar/http1"
	"github.com/skeinmesh/skein/sidecar/lb"
	"github.com/skeinmesh/skein/sidecar/router"
	"github.com/skeinmesh/skein/sidecar/upstream"
)

// forward2 sends an HTTP/1 request to a cluster that speaks HTTP/2,
// translating both ways (the HTTP/1 response is re-framed; trailers are
// dropped, as HTTP/1 clients rarely read them). retry reports, as
// forward1's, a try the route's retry policy retries, nothing sent.
func (s *conn1) forward2(cl *upstream.Cluster, host *lb.Host, r *router.Route, wc *router.WeightedCluster) (keep bool, status int, rx, tx int64, retry bool) {
	req, rs := &s.req, &s.rs
	reqBody := req.Body
	keep = !req.Close
	req.StripHopByHop()
	hdr := make(http.Header, req.Header.Len())
	authority := string(req.Authority())
	for name, value := range req.Header.All() {
		if strings.EqualFold(string(name), "host") {
			continue
		}
		hdr.Add(string(name), string(value))
	}
	u, err := url.ParseRequestURI(string(req.Target()))
	if err != nil {
		return s.localReply(400, ReasonBadRequest, nil, router.HeaderEdits{}, nil), 400, 0, 0, false
	}
	u.Scheme, u.Host = "http", authority
	ctx := s.ctx
	if !rs.hard.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, rs.hard)
		defer cancel()
	}
	cc, err := cl.HTTP2(ctx, host)
	if err != nil {
		if s.retries(failureOf(err), host) {
			return keep, 0, 0, 0, true
		}
		tx = s.b2.end(err) // an earlier try's body copy, if any
		status, reason := upstreamReason(err)
		return s.localReply(status, reason, nil, wc.ResponseHeaders, nil), status, 0, tx, false
	}
	tryCtx, perTry := rs.tryContext(ctx)
	defer perTry.end()
	out := (&http.Request{Method: string(req.Method()), URL: u, Host: authority, Header: hdr,
		Proto: "HTTP/2.0", ProtoMajor: 2}).WithContext(tryCtx)
	if reqBody.Kind != http1.NoBody {
		if s.b2 == nil {
			s.b2 = s.startBody2(reqBody)
		}
		out.Body, out.ContentLength = s.b2.reader(), -1
		if reqBody.Kind == http1.ContentLength {
			out.ContentLength = reqBody.Length
		}
	}
	resp, err := cc.RoundTrip(out)
	if err != nil {
		if s.retries(rs.roundTripFailure(s.ctx, err, perTry), host) {
			return keep, 0, 0, 0, true
		}
		var status int
		var reason Reason
		var ue *upstream.Error
		if errors.As(err, &ue) {
			status, reason = upstreamReason(err)
		} else {
			status, reason = roundTripError(ctx, err)
		}
		tx = s.b2.end(err)
		return s.localReply(status, reason, nil, wc.ResponseHeaders, nil), status, 0, tx, false
	}
	perTry.stop() // the per-try timeout ends with the head
	if rs.p != nil && retriesResponse(rs.p, resp.StatusCode, grpcStatusOf(resp.Header.Get("Grpc-Status"))) && s.retries(responseFailure(resp.Header.Get(HeaderReason)), host) {
		resp.Body.Close()
		return keep, 0, 0, 0, true
	}
	defer resp.Body.Close()
	resp1 := &s.resp
	resp1.Reset()
	resp1.Proto = req.Proto
	resp1.SetStatus(resp.StatusCode, http.StatusText(resp.StatusCode))
	for k, vs := range resp.Header {
		for _, v := range vs {
			resp1.Header.Add(k, v)
		}
	}
	resp1.StripHopByHop()
	in := http1.Framing{Kind: http1.UntilClose}
	if resp.ContentLength >= 0 {
		in = http1.Framing{Kind: http1.ContentLength, Length: resp.ContentLength}
	}
	if req.MethodIs("HEAD") || resp.StatusCode == 204 || resp.StatusCode == 304 {
		in = http1.Framing{}
	}
	out1 := in.For(req.Proto)
	resp1.Body = out1
	keep = keep && out1.Kind != http1.UntilClose
	s.respond(wc)
	tx = s.b2.end(nil)
	keep = keep && s.bodyDone
	resp1.Close = !keep
	if err := http1.WriteResponseHead(s.bw, resp1); err != nil {
		return false, resp.StatusCode, 0, tx, false
	}
	br := http1.NewReader(resp.Body)
	defer http1.PutReader(br)
	rx, err = http1.CopyBody(s.bw, br, in, out1)
	if err != nil {
		return false, resp.StatusCode, rx, tx, false
	}
	return keep, resp.StatusCode, rx, tx, false
}

// body2 is an HTTP/1 request body re-framed for an HTTP/2 upstream: a
// goroutine copies it from the client into a pipe, which the tries read
// through a replayBody when the request may be retried.
type body2 struct {
	s    *conn1
	pr   *io.PipeReader
	rb   *replayBody // nil: no retries
	done chan error
	tx   int64
	over bool // end was called
}

// startBody2 starts copying the request body.
func (s *conn1) startBody2(reqBody http1.Framing) *body2 {
	pr, pw := io.Pipe()
	b := &body2{s: s, pr: pr, done: make(chan error, 1)}
	if s.body.keep {
		b.rb = newReplayBody(pr)
	}
	outFraming := http1.Framing{Kind: http1.UntilClose}
	if reqBody.Kind == http1.ContentLength {
		outFraming = reqBody
	}
	s.body.started = true
	go func() {
		bw := http1.NewWriter(pw)
		n, err := http1.CopyBody(bw, s.br, reqBody, outFraming)
		http1.PutWriter(bw)
		b.tx = n
		if err == nil {
			err = io.EOF
		}
		pw.CloseWithError(err)
		b.done <- err
	}()
	return b
}

// reader is the body of a try.
func (b *body2) reader() io.ReadCloser {
	if b.rb != nil {
		return b.rb.try()
	}
	return b.pr
}

// replayable reports whether a retry can send the body again.
func (b *body2) replayable() bool { return b == nil || (b.rb != nil && b.rb.replayable()) }

// end waits for the copy to finish, first cutting it when failed is set
// (nothing will read the rest), and returns the bytes read; s.bodyDone
// says whether the body arrived in full. A nil *body2 (no body) is done.
func (b *body2) end(failed error) int64 {
	if b == nil {
		return 0
	}
	if !b.over {
		b.over = true
		if failed != nil {
			b.pr.CloseWithError(failed)
		}
		if b.rb != nil && failed == nil {
			b.rb.complete() // pumps what the last try left unread
		}
		err := <-b.done
		b.s.bodyDone = err == io.EOF
		if b.rb != nil {
			b.rb.free()
		}
	}
	return b.tx
}

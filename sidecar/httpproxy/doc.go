// Package httpproxy is skein-proxy's HTTP connection manager: the L7 request
// path behind a listener's HttpConnectionManager filter. Compile turns the
// Envoy v3 HttpConnectionManager into a Handler (the chain's terminal
// listener.ConnHandler; NewFactory plugs it into sidecar/listener), which
// serves HTTP/1.1 with keep-alive and HTTP/2 with prior knowledge on the same
// port, routes each request with sidecar/router, runs the HTTP filter chain,
// and forwards to a host of an sidecar/upstream cluster over HTTP/1.1 or
// HTTP/2 as the cluster speaks: gRPC with its trailers, streaming both ways;
// WebSocket and other Upgrade requests as a byte tunnel after the 101.
//
// # Request path
//
// Per request: parse the head (the HTTP/1 codec's limits answer 400, 431,
// 501 or 505), look up the route table (the inline one, or the RDS table by
// name, read per request so that an RDS update applies to the next request
// while a request in flight keeps the route it matched), route, run the
// HTTP filters' OnRequest in order, then the router: redirect and
// direct_response answer locally; otherwise pick the cluster (weighted
// clusters by a random number), the host (hash key from the route's hash
// policies, the original destination for ORIGINAL_DST), apply the path and
// host rewrites and the header edits, and forward. The response's edits
// and the filters' OnResponse (in reverse order) run before its head is
// sent. The steady-state HTTP/1.1 path allocates nothing.
//
// # HTTP/2
//
// The HTTP/2 server (server2.go, server2_stream.go, streamctx.go) is this
// package's own, on golang.org/x/net/http2's Framer and hpack rather than
// its Server, whose
// per-frame flushes (a goroutine and a write system call each) and
// per-stream machinery made skein-proxy 0.22x of direct under h2load where
// HAProxy made 1.60x. One goroutine per connection reads frames; each
// request runs on a worker goroutine with net/http's types
// (stream2.ServeHTTP, so the forwarding code is shared with the rest);
// every stream's frames are encoded into one connection buffer that one
// writer goroutine sends, yielding once first so that the responses ready
// at that moment go out in one write. Requests run on worker goroutines
// that are reused (their stacks already grown) and have a context of
// their own (streamCtx), cheaper than a context.WithCancel child per
// request of the connection's context; the route timeout (and so the
// retries' deadline) is a context.WithDeadline on it for an HTTP/2
// cluster, and the upstream connection's deadline for an HTTP/1.1 one. It keeps SETTINGS, flow control both
// ways (1 MiB windows granted per stream and per connection, refunded as
// the handler reads; the client's windows bound what is sent), PING,
// GOAWAY (on a connection error and at the idle timeout), RST_STREAM both
// ways (a handler's panic, http.ErrAbortHandler included, resets its
// stream; a client's reset cancels the request's context),
// MAX_CONCURRENT_STREAMS 250 (REFUSED_STREAM beyond), CONTINUATION,
// trailers both ways, and Content-Length checked against the DATA. Server
// push and priorities are not implemented (RFC 9113 lets a server ignore
// priorities), and a response lacking Date or Content-Type gets none added
// (net/http's server adds both). A response whose Content-Length worth of
// body the first read from upstream brings is sent as HEADERS and DATA
// with END_STREAM in one write; one that has no body (a gRPC
// trailers-only response) as one HEADERS frame with END_STREAM. The
// HTTP/1.1 exchange behind an HTTP/2 request writes the request head and
// parses the response head with sidecar/http1 (upstream1.go), handing the
// response on as an *http.Response; a bodiless idempotent request takes
// its connection with HTTP1Replayable (no liveness system call) and is
// resent once when a reused connection turns out closed, as on HTTP/1.
//
// Conformance is checked with h2spec (make h2spec, hack/h2spec.sh), which
// it passes but for one case where the proxy legitimately differs: with
// codec AUTO (HTTP/1.1 and h2c prior knowledge on one port) bytes that are
// not the connection preface are an HTTP/1.1 request, so an invalid preface
// gets an HTTP/1.1 400 with Connection: close and the connection is closed,
// not the bare close RFC 9113 3.4 asks of an HTTP/2-only endpoint
// (net/http's h2c does the same). Frames larger than the default
// SETTINGS_MAX_FRAME_SIZE (16 KiB, not raised) end the connection with
// FRAME_SIZE_ERROR (RFC 9113 4.2). DATA on a stream that ended or that the
// client reset gets RST_STREAM STREAM_CLOSED; frames on a stream the server
// reset are ignored (RFC 9113 5.1), for the last 16 streams it reset once
// they are forgotten, HEADERS on an older closed stream being a connection
// error as in net/http. Priorities are ignored, but a stream that depends on
// itself is a PROTOCOL_ERROR (RFC 9113 5.3.1), and so is a request lacking
// :method, :scheme or :path (CONNECT: :authority only; RFC 9113 8.3.1, 8.5).
//
// # HTTP filters
//
// Filter is the extension point for what the next issues add (fault
// injection, authorization, rate limits): Deps.Filters maps an HTTP
// filter's typed_config type URL to its HTTPFilterFactory. The router
// (RouterType) is built in and must be last. A filter with no factory is a
// compile error ("http_filters[0]: envoy.filters.http.fault is not
// supported yet"), so the proxy NACKs a config it would otherwise half
// apply (skipping authorization silently would be worse), unless the
// filter is is_optional, which Envoy also skips; a disabled filter is
// skipped (routes cannot enable it yet).
//
// # Why a request failed
//
// A response the proxy makes up carries x-skein-reason (HeaderReason) with
// one of the Reason constants, and a text body starting with the reason and
// a sentence ("no_route: no route matches this request's host, path and
// headers"). A gRPC request (content-type application/grpc) gets what gRPC
// clients understand instead: HTTP 200 with grpc-status (UNIMPLEMENTED for
// no_route, DEADLINE_EXCEEDED for timeouts, UNAVAILABLE for the upstream
// failures), grpc-message with the same sentence, and x-skein-reason. The
// statuses, as Envoy's:
//
//	no_route                  404  no virtual host or route matches; or the RDS table is unknown
//	cluster_not_found         503  the route's cluster does not exist (or cluster_not_found_response_code)
//	no_healthy_upstream       503  the cluster has no (healthy) host
//	upstream_connect_failure  503  connection refused, failed, or connect_timeout
//	upstream_reset            503  the upstream closed or reset before the response head
//	upstream_protocol_error   502  the upstream's response head is not valid HTTP
//	upstream_timeout          504  the route's timeout or the stream idle timeout passed before the response head
//	request_timeout           408  the request body did not arrive within request_timeout
//	downstream_protocol_error 400  the request head is refused (431, 501, 505 as the codec says)
//	upgrade_failed            403  an Upgrade to a protocol upgrade_configs does not enable
//
// Once bytes of the response were sent, a failure can only close the
// connection (HTTP/1) or reset the stream (HTTP/2).
//
// # Headers the proxy adds or removes
//
// Kept minimal: x-forwarded-proto "http" when absent (overwritten when
// use_remote_address); x-request-id, a random UUID, when absent (unless
// generate_request_id is false); x-forwarded-for gets the peer's address
// appended only when use_remote_address is true (and skip_xff_append is
// not), as Envoy; x-forwarded-client-cert is removed (SANITIZE, the only
// mode until mTLS). Hop-by-hop fields are stripped both ways. Not added:
// x-envoy-expected-rq-timeout-ms and other x-envoy-* headers, server, via.
//
// # Timeouts
//
//   - common_http_protocol_options.idle_timeout (default 1h): a downstream
//     connection waiting for its next request.
//   - stream_idle_timeout (default 5m; a route's idle_timeout overrides it):
//     HTTP/1 reads from the client, and the wait for each upstream read
//     (the response head, then each part of the body); before the head it
//     is 504 upstream_timeout, after it the connection closes.
//   - request_timeout (default none): the request head and body must arrive
//     within it (408).
//   - the route's timeout (unset: 15s; 0s: none) bounds the exchange with
//     the upstream from the moment it is forwarded, response body included.
//     It starts when the request is forwarded, where Envoy starts it once
//     the request is complete.
//
// On HTTP/2 only the route's timeout and the connection idle timeout apply
// for now.
//
// # Retries
//
// The route's retry policy (router.RetryPolicy) applies on all four
// forwarding paths. A try is retried, as Envoy's wouldRetryFromReset and
// wouldRetryFromHeaders decide, after a connect failure, a reset before the
// response head (reset-before-request: before the request went out),
// REFUSED_STREAM, its per_try_timeout, a status the policy lists, or a
// grpc-status in the response head (a trailers-only gRPC response); and
// only while nothing of the response went downstream (a 1xx other than 100
// counts), the request body can be sent again, and the back-off (Envoy's
// fully jittered exponential one) ends before the route's timeout, which
// bounds all tries together. Request bodies are kept as they stream, up to
// RetryBufferLimit (1 MiB, Envoy's per_connection_buffer_limit_bytes
// default): on the HTTP/1 to HTTP/1 path by a pooled copy made as the body
// is sent (no allocation when no retry happens), on the HTTP/2 paths by one
// goroutine per body that reads it for the tries (replayBody), so a retry
// can start over while the client still sends. A body past the limit is
// not retried once it started to go upstream. previous_hosts re-picks up
// to host_selection_retry_max_attempts times while the balancer returns a
// host already tried (hash balancers get a new key per re-pick; Envoy walks
// the ring) or, beyond Envoy, a host on which a try of any request failed
// retriably in the last FailedHostAvoidance (1s), first tries included:
// when a scale-down stops several pods at once, their inbound proxies
// answer 503 until the caller's EDS drops them, and tried hosts alone let
// a request spend all its tries on them. Also beyond Envoy, a try that
// reached no application (connect failure, REFUSED_STREAM, a peer's 503
// upstream_connect_failure) gets up to MaxUnprocessedRetries retries
// beyond num_retries while an untried host is left. A retried HTTP/1
// response with a small body is read and its connection kept, otherwise
// closed; an HTTP/2 one is reset.
// circuit_breakers max_retries, or else retry_budget, on the cluster's
// DEFAULT thresholds cap the requests retrying at once; a cluster with
// neither is not capped (Envoy's default is 3; Istio sets 2^32-1).
//
// Where this differs from Envoy: the failed-host marks above;
// per_try_timeout ends with the response head (Envoy's covers the whole
// try); per_try_idle_timeout is accepted and not applied (the router
// refuses retriable_headers, retriable_request_headers, rate-limited
// back-off, retry priorities and other host predicates); x-envoy-retry-on
// and the other retry request headers are not read; a 100 Continue is
// passed on from every try that sends one; retries are not counted in the
// stats yet (upstream_rq_retry).
//
// # Not yet
//
// Hedging, max_stream_duration and grpc-timeout, hash-policy cookie
// generation, auto_host_rewrite, strip_*_host_port, HTTP/2 to HTTP/2
// Upgrade (extended CONNECT) and request trailers on the HTTP/1 to HTTP/2
// path (response trailers are dropped towards an HTTP/1 client); access
// logs are accepted and not written. A local reply to an HTTP/1 request
// whose body was not read closes the connection rather than draining the
// body. Besides retries, a bodiless idempotent request whose reused
// keep-alive connection turned out closed is resent once, as net/http does.
package httpproxy

package httpproxy

import (
	"errors"
	"os"

	"github.com/skeinmesh/skein/sidecar/upstream"
)

// Reason says why the proxy answered a request itself. It is sent as the
// x-skein-reason response header (and for gRPC requests in grpc-message),
// and starts the reply's text body, so a user sees why a request failed.
type Reason string

// HeaderReason is the response header carrying the Reason of a local reply.
const HeaderReason = "x-skein-reason"

// The reasons of local replies, with the status each is answered with
// (gRPC requests get HTTP 200 with the grpc-status in brackets).
const (
	// ReasonNoRoute (404, UNIMPLEMENTED): no virtual host or route matches
	// the request's authority, path and headers, or the RDS table is not
	// known yet.
	ReasonNoRoute Reason = "no_route"
	// ReasonClusterNotFound (503 or the route's cluster_not_found_response_code,
	// UNAVAILABLE): the route names a cluster the proxy does not have.
	ReasonClusterNotFound Reason = "cluster_not_found"
	// ReasonNoHealthyUpstream (503, UNAVAILABLE): the cluster has no host to
	// send to (no endpoints, or none healthy).
	ReasonNoHealthyUpstream Reason = "no_healthy_upstream"
	// ReasonConnectFailure (503, UNAVAILABLE): the connection to the picked
	// host was refused, failed or timed out (the cluster's connect_timeout).
	ReasonConnectFailure Reason = "upstream_connect_failure"
	// ReasonUpstreamReset (503, UNAVAILABLE): the upstream connection closed
	// or failed before the response head arrived.
	ReasonUpstreamReset Reason = "upstream_reset"
	// ReasonUpstreamProtocol (502, UNAVAILABLE): the upstream's response was
	// not valid HTTP.
	ReasonUpstreamProtocol Reason = "upstream_protocol_error"
	// ReasonUpstreamTimeout (504, DEADLINE_EXCEEDED): the
	// route's timeout, or the stream idle timeout, passed before the
	// response head arrived.
	ReasonUpstreamTimeout Reason = "upstream_timeout"
	// ReasonRequestTimeout (408, DEADLINE_EXCEEDED): the request was not received in full
	// within request_timeout.
	ReasonRequestTimeout Reason = "request_timeout"
	// ReasonBadRequest (400, 431, 501 or 505): the request head was refused
	// by the HTTP/1 codec (malformed, too large, smuggling attempts).
	ReasonBadRequest Reason = "downstream_protocol_error"
	// ReasonUpgradeFailed (403): an Upgrade request for a protocol the
	// connection manager's upgrade_configs do not allow.
	ReasonUpgradeFailed Reason = "upgrade_failed"
	// ReasonFilterStopped (500): an HTTP filter stopped the request without
	// saying why (a filter bug).
	ReasonFilterStopped Reason = "filter_stopped"
	// ReasonDirectResponse and ReasonRedirect are not failures: they mark
	// the route's direct_response and redirect answers in logs; no header
	// is added for them.
	ReasonDirectResponse Reason = "direct_response"
	ReasonRedirect       Reason = "redirect"
)

// describe is a reason's text body.
func (r Reason) describe() string {
	switch r {
	case ReasonNoRoute:
		return "no_route: no route matches this request's host, path and headers\n"
	case ReasonClusterNotFound:
		return "cluster_not_found: the route's cluster does not exist in the proxy's configuration\n"
	case ReasonNoHealthyUpstream:
		return "no_healthy_upstream: the cluster has no healthy endpoint\n"
	case ReasonConnectFailure:
		return "upstream_connect_failure: the connection to the upstream endpoint failed\n"
	case ReasonUpstreamReset:
		return "upstream_reset: the upstream connection closed before a response\n"
	case ReasonUpstreamProtocol:
		return "upstream_protocol_error: the upstream's response was not valid HTTP\n"
	case ReasonUpstreamTimeout:
		return "upstream_timeout: the upstream did not answer within the route's timeout\n"
	case ReasonRequestTimeout:
		return "request_timeout: the request was not received within the request timeout\n"
	case ReasonBadRequest:
		return "downstream_protocol_error: the request is not valid HTTP/1.1\n"
	case ReasonUpgradeFailed:
		return "upgrade_failed: this Upgrade protocol is not enabled on this port\n"
	case ReasonFilterStopped:
		return "filter_stopped: an HTTP filter refused the request\n"
	}
	return string(r) + "\n"
}

// grpcStatus is the gRPC status code a local reply to a gRPC request has.
func grpcStatus(r Reason) string {
	switch r {
	case ReasonNoRoute:
		return "12" // UNIMPLEMENTED, as Envoy
	case ReasonUpstreamTimeout, ReasonRequestTimeout:
		return "4" // DEADLINE_EXCEEDED
	case ReasonUpgradeFailed:
		return "7" // PERMISSION_DENIED
	case ReasonBadRequest:
		return "13" // INTERNAL
	}
	return "14" // UNAVAILABLE
}

// upstreamReason maps an error from Pick or a connection pool to a reason
// and status.
func upstreamReason(err error) (int, Reason) {
	switch {
	case errors.Is(err, upstream.ErrNoHealthyUpstream), errors.Is(err, upstream.ErrNoOriginalDst):
		return 503, ReasonNoHealthyUpstream
	case errors.Is(err, upstream.ErrConnectFailure), errors.Is(err, upstream.ErrConnectTimeout):
		return 503, ReasonConnectFailure
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 504, ReasonUpstreamTimeout
	}
	var ue *upstream.Error
	if errors.As(err, &ue) {
		return ue.Status, ReasonConnectFailure
	}
	return 503, ReasonUpstreamReset
}

package httpproxy

import (
	"net/netip"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skeinmesh/skein/sidecar/router"
)

// Filter is an HTTP filter: the extension point of the request path
// (fault injection, authorization, rate limits...). Filters run in
// http_filters order on the request, before the router forwards it, and in
// reverse order on the response, as Envoy's decoder and encoder filters.
// A filter keeps no per-request state in itself (it is shared by every
// request of its config); what it needs per request it derives from the
// Exchange.
type Filter interface {
	// OnRequest sees the request head after routing (x.Route may be nil:
	// no route). It may edit x.RequestHeaders, and returns Continue, or
	// Stop after calling x.Reply, which answers the request locally; the
	// filters after it and the router do not run.
	OnRequest(x *Exchange) Action
	// OnResponse sees the response head before it is sent downstream,
	// local replies included, and may edit x.ResponseHeaders.
	OnResponse(x *Exchange)
}

// HTTPFilterFactory compiles one HTTP filter from its typed_config; name is
// the filter's name in the config (the key of its typed_per_filter_config
// on routes). It refuses what it does not support, naming fields relative
// to typed_config.
type HTTPFilterFactory func(name string, config *anypb.Any) (Filter, error)

// Action is what a filter's OnRequest tells the chain.
type Action uint8

const (
	// Continue runs the next filter, and after the last the router.
	Continue Action = iota
	// Stop ends the chain: the request is answered with the reply the
	// filter set with Exchange.Reply.
	Stop
)

// Exchange is one request and its response as filters see them. The HTTP/1
// path reuses one Exchange per connection, so a filter must not keep it (or
// anything it hands out) after the call returns.
type Exchange struct {
	// Request is the request as routing reads it.
	Request router.Request
	// RequestHeaders are the request's header fields, to edit.
	RequestHeaders router.Headers
	// Source is the downstream peer's address.
	Source netip.AddrPort
	// Destination is the connection's (original) destination.
	Destination netip.AddrPort
	// GRPC reports a gRPC request (content-type application/grpc):
	// local replies to it are gRPC statuses.
	GRPC bool
	// Route is the matched route; nil when none matched.
	Route *router.Route
	// Cluster is the cluster the router picked; "" before it did (in
	// OnRequest) or when the request was answered locally.
	Cluster string

	// Status is the response status, set before OnResponse.
	Status int
	// ResponseHeaders are the response's header fields, set before
	// OnResponse.
	ResponseHeaders router.Headers

	reply reply
}

// reply is a local reply: a response the proxy makes up itself.
type reply struct {
	set    bool
	status int
	reason Reason
	body   string
}

// Reply makes the response a local one: status, with x-skein-reason: reason
// and a short text body (body, or the reason's description when "").
// A filter calls it before returning Stop.
func (x *Exchange) Reply(status int, reason Reason, body string) {
	x.reply = reply{set: true, status: status, reason: reason, body: body}
}

// reset readies x for the next request.
func (x *Exchange) reset() {
	*x = Exchange{}
}

// runRequestFilters runs the chain's OnRequest; false means a filter
// stopped it with a reply.
func (h *Handler) runRequestFilters(x *Exchange) bool {
	for _, f := range h.filters {
		if f.OnRequest(x) == Stop {
			if !x.reply.set {
				x.Reply(500, ReasonFilterStopped, "")
			}
			return false
		}
	}
	return true
}

// runResponseFilters runs the chain's OnResponse in reverse order.
func (h *Handler) runResponseFilters(x *Exchange) {
	for i := len(h.filters) - 1; i >= 0; i-- {
		h.filters[i].OnResponse(x)
	}
}

package router

import (
	"regexp"
	"time"

	"google.golang.org/protobuf/types/known/anypb"
)

// ActionKind is what a route does with a request it matches.
type ActionKind uint8

const (
	// ActionCluster forwards to one cluster (route.cluster).
	ActionCluster ActionKind = iota
	// ActionWeightedClusters forwards to one of several clusters, picked
	// by weight (route.weighted_clusters).
	ActionWeightedClusters
	// ActionRedirect answers with a redirect (redirect).
	ActionRedirect
	// ActionDirectResponse answers with a fixed status and body
	// (direct_response).
	ActionDirectResponse
)

// Disabled is the value of a timeout that the configuration turns off
// explicitly (a zero duration where "unset" means something else).
const Disabled time.Duration = -1

// Route is a compiled route: immutable, shared by every request that
// matches it.
type Route struct {
	// Name is the route's name; "" if it has none.
	Name string
	// VirtualHost is the name of the virtual host holding the route.
	VirtualHost string
	// Action is what the route does; the fields below say how.
	Action ActionKind

	// Clusters are the forwarding targets: one for ActionCluster, the
	// weighted ones for ActionWeightedClusters, none otherwise.
	Clusters []WeightedCluster
	// ClusterNotFoundStatus is the status to answer when the picked
	// cluster does not exist: 503 (Envoy's default) or 404.
	ClusterNotFoundStatus int
	// PrefixRewrite replaces the matched part of the path before
	// forwarding (see RewritePath); "" means no prefix rewrite.
	PrefixRewrite string
	// HostRewrite replaces the authority before forwarding
	// (host_rewrite_literal); "" means none. A weighted cluster's own
	// HostRewrite takes precedence.
	HostRewrite string
	// AutoHostRewrite asks that the authority become the upstream host's
	// hostname (auto_host_rewrite); false means keep it.
	AutoHostRewrite bool
	// RequestHeaders are the request edits of the route, its virtual host
	// and the route configuration, in Envoy's order; a forwarded request
	// uses its picked cluster's RequestHeaders instead, which include
	// these.
	RequestHeaders HeaderEdits
	// ResponseHeaders, likewise, for responses, including redirects and
	// direct responses.
	ResponseHeaders HeaderEdits
	// Timeout bounds the whole exchange with the upstream, retries
	// included (forwarding routes only). 0 means no limit (the control plane emits "0s"); an unset
	// timeout is Envoy's default, 15s.
	Timeout time.Duration
	// IdleTimeout bounds the time without activity on the stream; 0 means
	// unset (the connection manager's stream idle timeout applies),
	// Disabled means the route turns idle timeouts off.
	IdleTimeout time.Duration
	// MaxStreamDuration is the route's max_stream_duration; the zero value
	// sets nothing.
	MaxStreamDuration MaxStreamDuration
	// Retry is the retry policy, the route's or else its virtual host's;
	// nil means no retries.
	Retry *RetryPolicy
	// HashPolicies compute the request's hash key for ring hash and
	// Maglev (see Hash); nil means none.
	HashPolicies []HashPolicy
	// PerFilterConfig is typed_per_filter_config by filter name: the
	// route's entries over its virtual host's over the route
	// configuration's, kept opaque for the HTTP filters; nil if none.
	// Shared between routes: read only, like everything in a Route.
	PerFilterConfig map[string]*anypb.Any
	// Redirect is set for ActionRedirect.
	Redirect *Redirect
	// DirectResponse is set for ActionDirectResponse.
	DirectResponse *DirectResponse

	match        routeMatch
	regexRewrite *regexp.Regexp // path rewrite; nil means none
	regexSubst   string         // Go template for regexRewrite
}

// WeightedCluster is a cluster a route forwards to, with what the route
// does differently when it is the one picked.
type WeightedCluster struct {
	// Name is the cluster's name.
	Name string
	// Weight is its share of requests; 1 for a route's only cluster.
	Weight uint32
	// HostRewrite replaces the authority: the cluster's own
	// host_rewrite_literal, else the route's; "" means none.
	HostRewrite string
	// RequestHeaders are the complete request edits when this cluster is
	// picked: its own first, then the route's (Route.RequestHeaders).
	RequestHeaders HeaderEdits
	// ResponseHeaders, likewise, for the response.
	ResponseHeaders HeaderEdits
	// PerFilterConfig is the cluster's typed_per_filter_config over the
	// route's (Route.PerFilterConfig); nil if neither has any.
	PerFilterConfig map[string]*anypb.Any
}

// MaxStreamDuration is RouteAction.max_stream_duration.
type MaxStreamDuration struct {
	// Max bounds a stream's whole life; 0 means no bound from the route.
	Max time.Duration
	// UseGRPCTimeout is whether a grpc-timeout header sets the bound
	// (grpc_timeout_header_max is set); false means the header is ignored.
	UseGRPCTimeout bool
	// GRPCTimeoutMax caps the grpc-timeout header's value when
	// UseGRPCTimeout; 0 means no cap.
	GRPCTimeoutMax time.Duration
	// GRPCTimeoutOffset is subtracted from the grpc-timeout header's
	// value; 0 means none.
	GRPCTimeoutOffset time.Duration
}

// Pick returns the cluster for a request given a random number: for
// weighted clusters the one whose cumulative weight range holds
// rnd % total weight, as Envoy; the only cluster otherwise; nil for a
// route that does not forward.
func (r *Route) Pick(rnd uint64) *WeightedCluster {
	switch len(r.Clusters) {
	case 0:
		return nil
	case 1:
		return &r.Clusters[0]
	}
	v := rnd % r.totalWeight()
	var end uint64
	for i := range r.Clusters {
		end += uint64(r.Clusters[i].Weight)
		if v < end {
			return &r.Clusters[i]
		}
	}
	return &r.Clusters[len(r.Clusters)-1]
}

// PickCluster is the name of Pick's cluster, "" for a route that does not
// forward.
func (r *Route) PickCluster(rnd uint64) string {
	if c := r.Pick(rnd); c != nil {
		return c.Name
	}
	return ""
}

func (r *Route) totalWeight() uint64 {
	var t uint64
	for i := range r.Clusters {
		t += uint64(r.Clusters[i].Weight)
	}
	return t
}

// RewritePath appends to dst the path, without its query, that a request
// for path is forwarded with, and reports whether the route rewrites it:
// PrefixRewrite replaces the part the route's path specifier matched (the
// prefix, or the whole path for exact and regex matches); a regex rewrite
// substitutes every match. The query is the caller's to keep. A prefix
// rewrite allocates nothing beyond dst's growth; a regex rewrite does.
func (r *Route) RewritePath(dst, path []byte) ([]byte, bool) {
	return rewritePath(dst, path, &r.match, r.PrefixRewrite, r.regexRewrite, r.regexSubst)
}

func rewritePath(dst, path []byte, m *routeMatch, prefix string, re *regexp.Regexp, subst string) ([]byte, bool) {
	switch {
	case prefix != "":
		n := m.matchedLen(path)
		dst = append(dst, prefix...)
		return append(dst, path[n:]...), true
	case re != nil:
		return append(dst, re.ReplaceAll(path, []byte(subst))...), true
	}
	return append(dst, path...), false
}

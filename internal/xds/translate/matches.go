package translate

import (
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// routeMatches maps a route's alternative matches; no match matches all.
func routeMatches(ms []meshv1alpha1.RouteMatch) []*routev3.RouteMatch {
	if len(ms) == 0 {
		return []*routev3.RouteMatch{{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}}
	}
	out := make([]*routev3.RouteMatch, len(ms))
	for i := range ms {
		out[i] = routeMatch(&ms[i])
	}
	return out
}

// routeMatch maps one match. A path prefix matches segment by segment, as
// the API says: "/api" is the regex "/api(/.*)?" (grpc-go does not know
// path_separated_prefix); a prefix ending in "/" is a plain prefix.
func routeMatch(rm *meshv1alpha1.RouteMatch) *routev3.RouteMatch {
	out := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	if p := rm.Path; p != nil {
		switch {
		case p.Exact != nil:
			out.PathSpecifier = &routev3.RouteMatch_Path{Path: *p.Exact}
		case p.Prefix != nil && strings.HasSuffix(*p.Prefix, "/"):
			out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: *p.Prefix}
		case p.Prefix != nil:
			out.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: regex(regexp.QuoteMeta(*p.Prefix) + "(/.*)?")}
		case p.Regex != nil:
			out.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: regex(*p.Regex)}
		}
	}
	if rm.Method != nil {
		out.Headers = append(out.Headers, &routev3.HeaderMatcher{
			Name:                 ":method",
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(string(*rm.Method))},
		})
	}
	for i := range rm.Headers {
		out.Headers = append(out.Headers, headerMatcher(&rm.Headers[i]))
	}
	for i := range rm.QueryParams {
		q := &rm.QueryParams[i]
		qm := &routev3.QueryParameterMatcher{Name: string(q.Name)}
		if q.Present != nil {
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: *q.Present}
		} else {
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: stringMatch(q)}
		}
		out.QueryParameters = append(out.QueryParameters, qm)
	}
	return out
}

// headerMatcher matches a header by its lower-case name; present: false
// matches requests without the header.
func headerMatcher(h *meshv1alpha1.HeaderMatch) *routev3.HeaderMatcher {
	out := &routev3.HeaderMatcher{Name: strings.ToLower(string(h.Name))}
	if h.Present != nil {
		out.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		out.InvertMatch = !*h.Present
		return out
	}
	out.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: stringMatch(h)}
	return out
}

// stringMatch is a header match's value matcher.
func stringMatch(h *meshv1alpha1.HeaderMatch) *matcherv3.StringMatcher {
	switch {
	case h.Prefix != nil:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: *h.Prefix}}
	case h.Regex != nil:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: regex(*h.Regex)}}
	default:
		return exact(orDefault(h.Exact, ""))
	}
}

func exact(v string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}

// regex is an RE2 matcher (Envoy's default engine).
func regex(re string) *matcherv3.RegexMatcher {
	return &matcherv3.RegexMatcher{Regex: re}
}

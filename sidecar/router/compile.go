package router

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Envoy's defaults.
const (
	defaultTimeout            = 15 * time.Second
	defaultNumRetries         = 1
	defaultBackOffBase        = 25 * time.Millisecond
	defaultMaxDirectBodyBytes = 4096
)

// Compile validates rc and compiles it into a Table. It refuses, naming
// the resource and the field path, anything it does not implement whose
// absence would change how a request is handled; fields with no effect on
// the data path (metadata, decorator, tracing, stat_prefix,
// virtual_clusters, runtime_key_prefix) are accepted and ignored.
func Compile(rc *routev3.RouteConfiguration) (*Table, error) {
	t, err := compile(rc)
	if err != nil {
		return nil, fmt.Errorf("route configuration %q: %w", rc.GetName(), err)
	}
	return t, nil
}

// level is what a virtual host or the route configuration contributes to
// its routes.
type level struct {
	req, resp HeaderEdits
	filters   map[string]*anypb.Any
}

func compile(rc *routev3.RouteConfiguration) (*Table, error) {
	if rc == nil {
		return nil, path("").err("nil route configuration")
	}
	var p path
	if err := onlyFields(rc, p, "name", "virtual_hosts", "request_headers_to_add", "request_headers_to_remove",
		"response_headers_to_add", "response_headers_to_remove", "most_specific_header_mutations_wins",
		"validate_clusters", "max_direct_response_body_size_bytes", "ignore_port_in_host_matching",
		"typed_per_filter_config", "metadata"); err != nil {
		return nil, err
	}
	t := &Table{
		Name:             rc.GetName(),
		ValidateClusters: rc.GetValidateClusters().GetValue(),
		exact:            map[string]*VirtualHost{},
		ignorePort:       rc.GetIgnorePortInHostMatching(),
	}
	c := compiler{
		mostSpecificWins: rc.GetMostSpecificHeaderMutationsWins(),
		maxBody:          defaultMaxDirectBodyBytes,
	}
	if m := rc.GetMaxDirectResponseBodySizeBytes(); m != nil {
		c.maxBody = int(m.GetValue())
	}
	var err error
	if c.global, err = compileLevel(p, rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove(),
		rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove(), rc.GetTypedPerFilterConfig()); err != nil {
		return nil, err
	}
	seen := map[string]int{}
	for i, v := range rc.GetVirtualHosts() {
		vp := p.index("virtual_hosts", i)
		vh, err := c.virtualHost(vp, v)
		if err != nil {
			return nil, err
		}
		t.vhosts = append(t.vhosts, vh)
		for j, d := range vh.Domains {
			if prev, dup := seen[d]; dup {
				return nil, vp.index("domains", j).err(fmt.Sprintf("domain %q is also in virtual_hosts[%d]", d, prev))
			}
			seen[d] = i
			switch {
			case d == "*":
				t.any = vh
			case strings.HasPrefix(d, "*"):
				t.suffix = append(t.suffix, wildcard{d[1:], vh})
			case strings.HasSuffix(d, "*"):
				t.prefix = append(t.prefix, wildcard{d[:len(d)-1], vh})
			default:
				t.exact[d] = vh
			}
		}
	}
	longestFirst := func(a, b wildcard) int { return cmp.Compare(len(b.s), len(a.s)) }
	slices.SortStableFunc(t.suffix, longestFirst)
	slices.SortStableFunc(t.prefix, longestFirst)
	// The generated validation rules (protoc-gen-validate) as a backstop
	// for what the checks above do not cover.
	if err := rc.Validate(); err != nil {
		return nil, p.err(err.Error())
	}
	return t, nil
}

type compiler struct {
	mostSpecificWins bool
	maxBody          int
	global           level
}

func compileLevel(p path, reqAdd []*corev3.HeaderValueOption, reqDel []string, respAdd []*corev3.HeaderValueOption, respDel []string, filters map[string]*anypb.Any) (level, error) {
	var l level
	var err error
	if l.req, err = compileHeaderEdits(p, "request_headers_to_add", reqAdd, "request_headers_to_remove", reqDel); err != nil {
		return l, err
	}
	if l.resp, err = compileHeaderEdits(p, "response_headers_to_add", respAdd, "response_headers_to_remove", respDel); err != nil {
		return l, err
	}
	if len(filters) == 0 {
		return l, nil
	}
	// Copies, so that the Table does not change with the proto.
	l.filters = make(map[string]*anypb.Any, len(filters))
	for k, v := range filters {
		if v == nil || v.GetTypeUrl() == "" {
			return l, p.key("typed_per_filter_config", k).err("empty config")
		}
		l.filters[k] = proto.Clone(v).(*anypb.Any)
	}
	return l, nil
}

func (c *compiler) virtualHost(p path, v *routev3.VirtualHost) (*VirtualHost, error) {
	if err := onlyFields(v, p, "name", "domains", "routes", "request_headers_to_add", "request_headers_to_remove",
		"response_headers_to_add", "response_headers_to_remove", "typed_per_filter_config", "retry_policy",
		"virtual_clusters", "metadata", "require_tls"); err != nil {
		return nil, err
	}
	if v.GetRequireTls() != routev3.VirtualHost_NONE {
		return nil, p.field("require_tls").err("not supported by skein-proxy (only NONE)")
	}
	vh := &VirtualHost{Name: v.GetName()}
	if len(v.GetDomains()) == 0 {
		return nil, p.field("domains").err("at least one domain is required")
	}
	for j, d := range v.GetDomains() {
		if d == "" {
			return nil, p.index("domains", j).err("empty domain")
		}
		if strings.Count(d, "*") > 1 || (d != "*" && strings.Contains(d[1:len(d)-1], "*")) {
			return nil, p.index("domains", j).err(fmt.Sprintf("domain %q: a wildcard is allowed only as its first or last character", d))
		}
		vh.Domains = append(vh.Domains, strings.ToLower(d))
	}
	lv, err := compileLevel(p, v.GetRequestHeadersToAdd(), v.GetRequestHeadersToRemove(),
		v.GetResponseHeadersToAdd(), v.GetResponseHeadersToRemove(), v.GetTypedPerFilterConfig())
	if err != nil {
		return nil, err
	}
	var vhRetry *RetryPolicy
	if v.GetRetryPolicy() != nil {
		if vhRetry, err = retryPolicy(p.field("retry_policy"), v.GetRetryPolicy()); err != nil {
			return nil, err
		}
	}
	for k, r := range v.GetRoutes() {
		rt, err := c.route(p.index("routes", k), r, vh.Name, lv, vhRetry)
		if err != nil {
			return nil, err
		}
		vh.Routes = append(vh.Routes, rt)
	}
	return vh, nil
}

// order orders the levels' edits as Envoy: by default the route's, then
// the virtual host's, then the configuration's, so that the least
// specific wins a conflict; most_specific_header_mutations_wins reverses
// that. Within a level, removals come before additions.
func (c *compiler) order(route, vhost, global HeaderEdits) HeaderEdits {
	if c.mostSpecificWins {
		return global.then(vhost).then(route)
	}
	return route.then(vhost).then(global)
}

// overlay returns the entries of more over those of less.
func overlay(less, more map[string]*anypb.Any) map[string]*anypb.Any {
	if len(more) == 0 {
		return less
	}
	if len(less) == 0 {
		return more
	}
	out := maps.Clone(less)
	maps.Copy(out, more)
	return out
}

func (c *compiler) route(p path, r *routev3.Route, vhName string, vh level, vhRetry *RetryPolicy) (*Route, error) {
	if err := onlyFields(r, p, "name", "match", "route", "redirect", "direct_response", "metadata", "decorator",
		"typed_per_filter_config", "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add",
		"response_headers_to_remove", "tracing", "stat_prefix"); err != nil {
		return nil, err
	}
	rt := &Route{Name: r.GetName(), VirtualHost: vhName}
	if r.GetMatch() == nil {
		return nil, p.field("match").err("required")
	}
	m, err := compileRouteMatch(p.field("match"), r.GetMatch())
	if err != nil {
		return nil, err
	}
	rt.match = m
	lv, err := compileLevel(p, r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove(),
		r.GetResponseHeadersToAdd(), r.GetResponseHeadersToRemove(), r.GetTypedPerFilterConfig())
	if err != nil {
		return nil, err
	}
	rt.RequestHeaders = c.order(lv.req, vh.req, c.global.req)
	rt.ResponseHeaders = c.order(lv.resp, vh.resp, c.global.resp)
	rt.PerFilterConfig = overlay(overlay(c.global.filters, vh.filters), lv.filters)
	switch a := r.GetAction().(type) {
	case *routev3.Route_Route:
		err = c.routeAction(p.field("route"), a.Route, rt, vhRetry)
	case *routev3.Route_Redirect:
		rt.Action = ActionRedirect
		rt.Redirect, err = redirect(p.field("redirect"), a.Redirect)
	case *routev3.Route_DirectResponse:
		rt.Action = ActionDirectResponse
		rt.DirectResponse, err = c.directResponse(p.field("direct_response"), a.DirectResponse)
	default:
		err = p.err("an action (route, redirect or direct_response) is required")
	}
	if err != nil {
		return nil, err
	}
	return rt, nil
}

func compileRouteMatch(p path, m *routev3.RouteMatch) (routeMatch, error) {
	var out routeMatch
	if err := onlyFields(m, p, "prefix", "path", "safe_regex", "path_separated_prefix", "case_sensitive",
		"headers", "query_parameters", "grpc"); err != nil {
		return out, err
	}
	out.caseInsensitive = m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()
	switch s := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		out.kind, out.path = pathPrefix, s.Prefix
	case *routev3.RouteMatch_Path:
		out.kind, out.path = pathExact, s.Path
	case *routev3.RouteMatch_PathSeparatedPrefix:
		out.kind, out.path = pathSeparatedPrefix, s.PathSeparatedPrefix
		if strings.ContainsAny(s.PathSeparatedPrefix, "?#") || strings.HasSuffix(s.PathSeparatedPrefix, "/") {
			return out, p.field("path_separated_prefix").err("must not contain '?' or '#' nor end with '/'")
		}
	case *routev3.RouteMatch_SafeRegex:
		out.kind = pathRegex
		re, err := regexMatcher(p.field("safe_regex"), s.SafeRegex)
		if err != nil {
			return out, err
		}
		out.re = re
	default:
		return out, p.err("a path specifier (prefix, path, safe_regex or path_separated_prefix) is required")
	}
	if out.caseInsensitive {
		out.path = strings.ToLower(out.path)
	}
	if g := m.GetGrpc(); g != nil {
		if err := onlyFields(g, p.field("grpc")); err != nil {
			return out, err
		}
		out.grpc = true
	}
	for i, h := range m.GetHeaders() {
		hm, err := headerMatch(p.index("headers", i), h)
		if err != nil {
			return out, err
		}
		out.headers = append(out.headers, hm)
	}
	for i, q := range m.GetQueryParameters() {
		qp := p.index("query_parameters", i)
		if err := onlyFields(q, qp, "name", "string_match", "present_match"); err != nil {
			return out, err
		}
		if q.GetName() == "" {
			return out, qp.field("name").err("required")
		}
		qm := queryMatcher{name: q.GetName()}
		switch s := q.GetQueryParameterMatchSpecifier().(type) {
		case *routev3.QueryParameterMatcher_PresentMatch:
			qm.hasPresent, qm.present = true, s.PresentMatch
		case *routev3.QueryParameterMatcher_StringMatch:
			sm, err := stringMatch(qp.field("string_match"), s.StringMatch)
			if err != nil {
				return out, err
			}
			qm.str = &sm
		}
		out.query = append(out.query, qm)
	}
	return out, nil
}

func regexMatcher(p path, m *matcherv3.RegexMatcher) (*regexp.Regexp, error) {
	if err := onlyFields(m, p, "regex"); err != nil {
		return nil, err
	}
	re, err := compileRegex(m.GetRegex())
	if err != nil {
		return nil, p.field("regex").err(err.Error())
	}
	return re, nil
}

func stringMatch(p path, m *matcherv3.StringMatcher) (stringMatcher, error) {
	var out stringMatcher
	if m == nil {
		return out, p.err("required")
	}
	if err := onlyFields(m, p, "exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"); err != nil {
		return out, err
	}
	out.ignoreCase = m.GetIgnoreCase()
	switch s := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		out.kind, out.pattern = matchExact, s.Exact
	case *matcherv3.StringMatcher_Prefix:
		out.kind, out.pattern = matchPrefix, s.Prefix
	case *matcherv3.StringMatcher_Suffix:
		out.kind, out.pattern = matchSuffix, s.Suffix
	case *matcherv3.StringMatcher_Contains:
		out.kind, out.pattern = matchContains, s.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexMatcher(p.field("safe_regex"), s.SafeRegex)
		if err != nil {
			return out, err
		}
		out.kind, out.re, out.ignoreCase = matchRegex, re, false
	default:
		return out, p.err("a match pattern is required")
	}
	if out.ignoreCase {
		out.pattern = strings.ToLower(out.pattern)
	}
	return out, nil
}

func headerMatch(p path, h *routev3.HeaderMatcher) (headerMatcher, error) {
	var out headerMatcher
	if err := onlyFields(h, p, "name", "exact_match", "safe_regex_match", "range_match", "present_match",
		"prefix_match", "suffix_match", "contains_match", "string_match", "invert_match",
		"treat_missing_header_as_empty"); err != nil {
		return out, err
	}
	if h.GetName() == "" {
		return out, p.field("name").err("required")
	}
	out.name = strings.ToLower(h.GetName())
	switch out.name {
	case ":method":
		out.src = fromMethod
	case ":authority":
		out.src = fromAuthority
	}
	out.invert, out.missingAsEmpty = h.GetInvertMatch(), h.GetTreatMissingHeaderAsEmpty()
	var err error
	str := func(k matchKind, s string) {
		out.kind, out.str = headerString, stringMatcher{kind: k, pattern: s}
	}
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case nil:
		out.kind = headerAny
	case *routev3.HeaderMatcher_StringMatch:
		out.kind = headerString
		out.str, err = stringMatch(p.field("string_match"), s.StringMatch)
	case *routev3.HeaderMatcher_PresentMatch:
		out.kind, out.present = headerPresent, s.PresentMatch
	case *routev3.HeaderMatcher_RangeMatch:
		out.kind, out.rangeLo, out.rangeHi = headerRange, s.RangeMatch.GetStart(), s.RangeMatch.GetEnd()
		if out.rangeLo >= out.rangeHi {
			err = p.field("range_match").err("start must be less than end")
		}
	case *routev3.HeaderMatcher_ExactMatch:
		str(matchExact, s.ExactMatch)
	case *routev3.HeaderMatcher_PrefixMatch:
		str(matchPrefix, s.PrefixMatch)
	case *routev3.HeaderMatcher_SuffixMatch:
		str(matchSuffix, s.SuffixMatch)
	case *routev3.HeaderMatcher_ContainsMatch:
		str(matchContains, s.ContainsMatch)
	case *routev3.HeaderMatcher_SafeRegexMatch:
		out.kind = headerString
		out.str.kind = matchRegex
		out.str.re, err = regexMatcher(p.field("safe_regex_match"), s.SafeRegexMatch)
	}
	return out, err
}

func duration(d *durationpb.Duration) time.Duration { return d.AsDuration() }

package router

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	// The previous_hosts predicate's config type, registered so that a
	// bootstrap (YAML) and a config dump (JSON) can name it.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

func (c *compiler) routeAction(p path, a *routev3.RouteAction, rt *Route, vhRetry *RetryPolicy) error {
	if err := onlyFields(a, p, "cluster", "weighted_clusters", "cluster_not_found_response_code", "prefix_rewrite",
		"regex_rewrite", "host_rewrite_literal", "auto_host_rewrite", "timeout", "idle_timeout", "retry_policy",
		"hash_policy", "max_stream_duration", "priority"); err != nil {
		return err
	}
	if a.GetPriority() != 0 {
		return p.field("priority").err("not supported by skein-proxy (only DEFAULT)")
	}
	switch a.GetClusterNotFoundResponseCode() {
	case routev3.RouteAction_SERVICE_UNAVAILABLE:
		rt.ClusterNotFoundStatus = 503
	case routev3.RouteAction_NOT_FOUND:
		rt.ClusterNotFoundStatus = 404
	case routev3.RouteAction_INTERNAL_SERVER_ERROR:
		rt.ClusterNotFoundStatus = 500
	default:
		return p.field("cluster_not_found_response_code").err("unknown code " + a.GetClusterNotFoundResponseCode().String())
	}
	rt.HostRewrite = a.GetHostRewriteLiteral()
	rt.AutoHostRewrite = a.GetAutoHostRewrite().GetValue()
	switch s := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		if s.Cluster == "" {
			return p.field("cluster").err("empty cluster name")
		}
		rt.Action = ActionCluster
		rt.Clusters = []WeightedCluster{{Name: s.Cluster, Weight: 1}}
	case *routev3.RouteAction_WeightedClusters:
		rt.Action = ActionWeightedClusters
		if err := c.weightedClusters(p.field("weighted_clusters"), s.WeightedClusters, rt); err != nil {
			return err
		}
	default:
		return p.err("a cluster specifier (cluster or weighted_clusters) is required")
	}
	for i := range rt.Clusters {
		wc := &rt.Clusters[i]
		if wc.HostRewrite == "" {
			wc.HostRewrite = rt.HostRewrite
		}
		// Envoy applies a weighted cluster's edits before the route's.
		wc.RequestHeaders = wc.RequestHeaders.then(rt.RequestHeaders)
		wc.ResponseHeaders = wc.ResponseHeaders.then(rt.ResponseHeaders)
		wc.PerFilterConfig = overlay(rt.PerFilterConfig, wc.PerFilterConfig)
	}
	rt.PrefixRewrite = a.GetPrefixRewrite()
	if rr := a.GetRegexRewrite(); rr != nil {
		if rt.PrefixRewrite != "" {
			return p.field("regex_rewrite").err("prefix_rewrite and regex_rewrite are both set")
		}
		var err error
		if rt.regexRewrite, rt.regexSubst, err = regexRewrite(p.field("regex_rewrite"), rr); err != nil {
			return err
		}
	}
	if rt.PrefixRewrite != "" && !strings.HasPrefix(rt.PrefixRewrite, "/") {
		return p.field("prefix_rewrite").err("must start with '/'")
	}
	rt.Timeout = defaultTimeout
	if a.GetTimeout() != nil {
		rt.Timeout = duration(a.GetTimeout())
	}
	if a.GetIdleTimeout() != nil {
		if rt.IdleTimeout = duration(a.GetIdleTimeout()); rt.IdleTimeout == 0 {
			rt.IdleTimeout = Disabled
		}
	}
	if rt.Timeout < 0 || rt.IdleTimeout < Disabled {
		return p.err("negative timeout")
	}
	if msd := a.GetMaxStreamDuration(); msd != nil {
		mp := p.field("max_stream_duration")
		if err := onlyFields(msd, mp, "max_stream_duration", "grpc_timeout_header_max", "grpc_timeout_header_offset"); err != nil {
			return err
		}
		rt.MaxStreamDuration = MaxStreamDuration{
			Max:               duration(msd.GetMaxStreamDuration()),
			UseGRPCTimeout:    msd.GetGrpcTimeoutHeaderMax() != nil,
			GRPCTimeoutMax:    duration(msd.GetGrpcTimeoutHeaderMax()),
			GRPCTimeoutOffset: duration(msd.GetGrpcTimeoutHeaderOffset()),
		}
	}
	rt.Retry = vhRetry
	if a.GetRetryPolicy() != nil {
		var err error
		if rt.Retry, err = retryPolicy(p.field("retry_policy"), a.GetRetryPolicy()); err != nil {
			return err
		}
	}
	for i, h := range a.GetHashPolicy() {
		hp, err := hashPolicy(p.index("hash_policy", i), h)
		if err != nil {
			return err
		}
		rt.HashPolicies = append(rt.HashPolicies, hp)
	}
	return nil
}

func (c *compiler) weightedClusters(p path, w *routev3.WeightedCluster, rt *Route) error {
	if err := onlyFields(w, p, "clusters", "total_weight", "runtime_key_prefix"); err != nil {
		return err
	}
	var sum uint64
	for i, cw := range w.GetClusters() {
		cp := p.index("clusters", i)
		if err := onlyFields(cw, cp, "name", "weight", "request_headers_to_add", "request_headers_to_remove",
			"response_headers_to_add", "response_headers_to_remove", "typed_per_filter_config", "host_rewrite_literal"); err != nil {
			return err
		}
		if cw.GetName() == "" {
			return cp.field("name").err("required")
		}
		lv, err := compileLevel(cp, cw.GetRequestHeadersToAdd(), cw.GetRequestHeadersToRemove(),
			cw.GetResponseHeadersToAdd(), cw.GetResponseHeadersToRemove(), cw.GetTypedPerFilterConfig())
		if err != nil {
			return err
		}
		wc := WeightedCluster{
			Name:            cw.GetName(),
			Weight:          cw.GetWeight().GetValue(),
			HostRewrite:     cw.GetHostRewriteLiteral(),
			RequestHeaders:  lv.req,
			ResponseHeaders: lv.resp,
			PerFilterConfig: lv.filters,
		}
		sum += uint64(wc.Weight)
		rt.Clusters = append(rt.Clusters, wc)
	}
	if len(rt.Clusters) == 0 {
		return p.field("clusters").err("at least one cluster is required")
	}
	if sum == 0 || sum > 1<<32-1 {
		return p.field("clusters").err(fmt.Sprintf("weights sum to %d; the sum must be between 1 and 2^32-1", sum))
	}
	if tw := w.GetTotalWeight(); tw != nil && uint64(tw.GetValue()) != sum {
		return p.field("total_weight").err(fmt.Sprintf("is %d but the weights sum to %d", tw.GetValue(), sum))
	}
	return nil
}

// regexRewrite compiles a RegexMatchAndSubstitute. Envoy substitutes every
// match (RE2 GlobalReplace) with \0..\9 naming groups; that becomes a Go
// template.
func regexRewrite(p path, rr *matcherv3.RegexMatchAndSubstitute) (*regexp.Regexp, string, error) {
	if err := onlyFields(rr, p, "pattern", "substitution"); err != nil {
		return nil, "", err
	}
	if rr.GetPattern() == nil {
		return nil, "", p.field("pattern").err("required")
	}
	if err := onlyFields(rr.GetPattern(), p.field("pattern"), "regex"); err != nil {
		return nil, "", err
	}
	re, err := regexp.Compile(rr.GetPattern().GetRegex())
	if err != nil {
		return nil, "", p.field("pattern.regex").err(err.Error())
	}
	s := rr.GetSubstitution()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '$':
			b.WriteString("$$")
		case c == '\\' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			n := int(s[i+1] - '0')
			if n > re.NumSubexp() {
				return nil, "", p.field("substitution").err(fmt.Sprintf("\\%d names a group the pattern does not have", n))
			}
			fmt.Fprintf(&b, "${%d}", n)
			i++
		case c == '\\' && i+1 < len(s) && s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case c == '\\':
			return nil, "", p.field("substitution").err("a backslash must be followed by a digit or a backslash")
		default:
			b.WriteByte(c)
		}
	}
	return re, b.String(), nil
}

func retryPolicy(p path, rp *routev3.RetryPolicy) (*RetryPolicy, error) {
	if err := onlyFields(rp, p, "retry_on", "num_retries", "per_try_timeout", "per_try_idle_timeout",
		"retriable_status_codes", "retry_back_off", "retry_host_predicate", "host_selection_retry_max_attempts"); err != nil {
		return nil, err
	}
	out := &RetryPolicy{
		NumRetries:        defaultNumRetries,
		PerTryTimeout:     duration(rp.GetPerTryTimeout()),
		PerTryIdleTimeout: duration(rp.GetPerTryIdleTimeout()),
		BackOffBase:       defaultBackOffBase,
	}
	if n := rp.GetNumRetries(); n != nil {
		out.NumRetries = n.GetValue()
	}
	for name := range strings.SplitSeq(rp.GetRetryOn(), ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		f, ok := retryOnNames[name]
		if !ok {
			return nil, p.field("retry_on").err(fmt.Sprintf("unknown retry condition %q", name))
		}
		out.On |= f
	}
	if out.On == 0 {
		return nil, p.field("retry_on").err("no retry condition")
	}
	for i, hp := range rp.GetRetryHostPredicate() {
		if !previousHosts(hp) {
			return nil, p.index("retry_host_predicate", i).err(fmt.Sprintf("%q is not supported by skein-proxy (only %s)", hp.GetName(), previousHostsName))
		}
		out.PreviousHosts = true
	}
	if n := rp.GetHostSelectionRetryMaxAttempts(); n != 0 {
		if n < 0 {
			return nil, p.field("host_selection_retry_max_attempts").err("must not be negative")
		}
		out.HostSelectionMaxAttempts = uint32(min(n, maxHostSelectionAttempts))
	}
	if len(rp.GetRetriableStatusCodes()) > 0 {
		out.RetriableStatusCodes = append([]uint32(nil), rp.GetRetriableStatusCodes()...)
	}
	if bo := rp.GetRetryBackOff(); bo != nil {
		bp := p.field("retry_back_off")
		if err := onlyFields(bo, bp, "base_interval", "max_interval"); err != nil {
			return nil, err
		}
		if bo.GetBaseInterval() == nil || duration(bo.GetBaseInterval()) <= 0 {
			return nil, bp.field("base_interval").err("must be greater than 0")
		}
		out.BackOffBase = duration(bo.GetBaseInterval())
		if bo.GetMaxInterval() != nil {
			out.BackOffMax = duration(bo.GetMaxInterval())
			if out.BackOffMax < out.BackOffBase {
				return nil, bp.field("max_interval").err("must not be less than base_interval")
			}
		}
	}
	if out.BackOffMax == 0 {
		out.BackOffMax = 10 * out.BackOffBase
	}
	return out, nil
}

// The previous hosts retry host predicate, by its extension name and its
// typed_config's type.
const (
	previousHostsName = "envoy.retry_host_predicates.previous_hosts"
	previousHostsType = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
	// maxHostSelectionAttempts caps host_selection_retry_max_attempts: each
	// is a balancer pick, and a retry should not spin on a small cluster.
	maxHostSelectionAttempts = 100
)

// previousHosts reports whether hp is the previous hosts predicate: its
// typed_config says so, or, without one, its name (the deprecated form).
func previousHosts(hp *routev3.RetryPolicy_RetryHostPredicate) bool {
	if tc := hp.GetTypedConfig(); tc != nil {
		return tc.GetTypeUrl() == previousHostsType
	}
	return hp.GetName() == previousHostsName
}

func hashPolicy(p path, h *routev3.RouteAction_HashPolicy) (HashPolicy, error) {
	var out HashPolicy
	if err := onlyFields(h, p, "header", "cookie", "connection_properties", "query_parameter", "terminal"); err != nil {
		return out, err
	}
	out.Terminal = h.GetTerminal()
	switch s := h.GetPolicySpecifier().(type) {
	case *routev3.RouteAction_HashPolicy_Header_:
		if err := onlyFields(s.Header, p.field("header"), "header_name"); err != nil {
			return out, err
		}
		out.Kind, out.Name = HashHeader, strings.ToLower(s.Header.GetHeaderName())
	case *routev3.RouteAction_HashPolicy_Cookie_:
		if err := onlyFields(s.Cookie, p.field("cookie"), "name", "ttl", "path"); err != nil {
			return out, err
		}
		out.Kind, out.Name = HashCookie, s.Cookie.GetName()
		out.CookieTTL, out.CookiePath = duration(s.Cookie.GetTtl()), s.Cookie.GetPath()
	case *routev3.RouteAction_HashPolicy_ConnectionProperties_:
		if !s.ConnectionProperties.GetSourceIp() {
			return out, p.field("connection_properties.source_ip").err("must be true")
		}
		out.Kind = HashSourceIP
	case *routev3.RouteAction_HashPolicy_QueryParameter_:
		out.Kind, out.Name = HashQueryParameter, s.QueryParameter.GetName()
	default:
		return out, p.err("a policy specifier is required")
	}
	if out.Kind != HashSourceIP && out.Name == "" {
		return out, p.err("empty name")
	}
	return out, nil
}

func redirect(p path, r *routev3.RedirectAction) (*Redirect, error) {
	if err := onlyFields(r, p, "https_redirect", "scheme_redirect", "host_redirect", "port_redirect", "path_redirect",
		"prefix_rewrite", "regex_rewrite", "response_code", "strip_query"); err != nil {
		return nil, err
	}
	out := &Redirect{
		Host:          r.GetHostRedirect(),
		Port:          r.GetPortRedirect(),
		Path:          r.GetPathRedirect(),
		PrefixRewrite: r.GetPrefixRewrite(),
		StripQuery:    r.GetStripQuery(),
	}
	switch {
	case r.GetSchemeRedirect() != "":
		out.Scheme = strings.ToLower(r.GetSchemeRedirect())
	case r.GetHttpsRedirect():
		out.Scheme = "https"
	}
	if out.Port > 65535 {
		return nil, p.field("port_redirect").err("not a port")
	}
	if strings.ContainsAny(out.Host, "/?# ") {
		return nil, p.field("host_redirect").err("not a host")
	}
	if out.Path != "" {
		if _, err := url.Parse(out.Path); err != nil || !strings.HasPrefix(out.Path, "/") {
			return nil, p.field("path_redirect").err("not an absolute path")
		}
		out.pathHasQuery = strings.Contains(out.Path, "?")
	}
	if rr := r.GetRegexRewrite(); rr != nil {
		var err error
		if out.regexRewrite, out.regexSubst, err = regexRewrite(p.field("regex_rewrite"), rr); err != nil {
			return nil, err
		}
	}
	switch r.GetResponseCode() {
	case routev3.RedirectAction_MOVED_PERMANENTLY:
		out.Status = 301
	case routev3.RedirectAction_FOUND:
		out.Status = 302
	case routev3.RedirectAction_SEE_OTHER:
		out.Status = 303
	case routev3.RedirectAction_TEMPORARY_REDIRECT:
		out.Status = 307
	case routev3.RedirectAction_PERMANENT_REDIRECT:
		out.Status = 308
	default:
		return nil, p.field("response_code").err("unknown code " + r.GetResponseCode().String())
	}
	return out, nil
}

func (c *compiler) directResponse(p path, d *routev3.DirectResponseAction) (*DirectResponse, error) {
	if err := onlyFields(d, p, "status", "body"); err != nil {
		return nil, err
	}
	out := &DirectResponse{Status: int(d.GetStatus())}
	if out.Status < 200 || out.Status > 599 {
		return nil, p.field("status").err(fmt.Sprintf("%d is not a status between 200 and 599", out.Status))
	}
	if b := d.GetBody(); b != nil {
		bp := p.field("body")
		if err := onlyFields(b, bp, "inline_bytes", "inline_string"); err != nil {
			return nil, err
		}
		switch {
		case b.GetInlineString() != "":
			out.Body = []byte(b.GetInlineString())
		case len(b.GetInlineBytes()) > 0:
			out.Body = append([]byte(nil), b.GetInlineBytes()...)
		}
		if len(out.Body) > c.maxBody {
			return nil, bp.err(fmt.Sprintf("%d bytes, more than max_direct_response_body_size_bytes (%d)", len(out.Body), c.maxBody))
		}
	}
	return out, nil
}

package translate

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
)

// routeBuilder turns the TrafficPolicy of one service port into Envoy routes.
// need is called for every cluster a route sends to, so that the caller
// emits it.
type routeBuilder struct {
	m    *mesh.Model
	need func(s *mesh.Service, port mesh.Port, subset string) string
}

// serviceRoutes are the routes of s's port: the policy's routes, each match
// an Envoy route of its own, in order, then the default route to the whole
// service. usesFault reports whether any carries a fault config.
// proxyless adds what grpc-go reads instead of Envoy's fields (the request
// timeout as max_stream_duration).
func (b routeBuilder) serviceRoutes(s *mesh.Service, port mesh.Port, pol *mesh.TrafficPolicy, proxyless bool) (routes []*routev3.Route, usesFault bool) {
	spec := specOf(pol)
	var hash []*routev3.RouteAction_HashPolicy
	if spec != nil && spec.LoadBalancer != nil {
		hash = hashPolicies(spec.LoadBalancer.HashOn)
	}
	def := OutboundClusterName(port.Number, "", s.Host)
	if spec != nil {
		for i := range spec.Routes {
			r := &spec.Routes[i]
			action := b.routeAction(s, port, r, def)
			timeouts, retries, fault := spec.Timeouts, spec.Retries, spec.FaultInjection
			if r.Timeouts != nil {
				timeouts = r.Timeouts
			}
			if r.Retries != nil {
				retries = r.Retries
			}
			if r.FaultInjection != nil {
				fault = r.FaultInjection
			}
			matches := routeMatches(r.Matches)
			name := pol.Name + "/" + r.Name
			if r.Name == "" {
				name = pol.Name + "/" + strconv.Itoa(i)
			}
			for _, match := range matches {
				er := finishRoute(name, match, action, hash, timeouts, retries, fault, proxyless)
				usesFault = usesFault || fault != nil
				routes = append(routes, er)
			}
		}
	}
	var timeouts *meshv1alpha1.Timeouts
	var retries *meshv1alpha1.RetryPolicy
	var fault *meshv1alpha1.FaultInjection
	if spec != nil {
		timeouts, retries, fault = spec.Timeouts, spec.Retries, spec.FaultInjection
	}
	action := &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: def}}
	routes = append(routes, finishRoute("default", &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		action, hash, timeouts, retries, fault, proxyless))
	usesFault = usesFault || fault != nil
	return routes, usesFault
}

// routeAction sends to r's backends, weighted; nil (a 503 answer) when none
// resolves or all weigh zero.
func (b routeBuilder) routeAction(s *mesh.Service, port mesh.Port, r *meshv1alpha1.Route, def string) *routev3.RouteAction {
	if len(r.Backends) == 0 {
		return &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: def}}
	}
	wc := b.weightedClusters(s, port, r.Backends)
	switch len(wc) {
	case 0:
		return nil
	case 1:
		return &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: wc[0].Name}}
	}
	out := make([]*routev3.WeightedCluster_ClusterWeight, len(wc))
	for i, c := range wc {
		out[i] = &routev3.WeightedCluster_ClusterWeight{Name: c.Name, Weight: wrapperspb.UInt32(c.Weight)}
	}
	return &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{
		WeightedClusters: &routev3.WeightedCluster{Clusters: out},
	}}
}

// weighted is a cluster and its share.
type weighted struct {
	Name   string
	Weight uint32
}

// weightedClusters resolves backends to clusters with a weight above zero,
// merging backends that land on the same cluster. A backend whose service,
// port or subset does not exist is left out (its TrafficPolicy reports
// ResolvedRefs=False).
func (b routeBuilder) weightedClusters(s *mesh.Service, port mesh.Port, backends []meshv1alpha1.Backend) []weighted {
	var out []weighted
	for _, be := range backends {
		w := orDefault(be.Weight, 1)
		if w <= 0 {
			continue
		}
		ns, name := s.Namespace, s.Name
		if be.Namespace != "" {
			ns = string(be.Namespace)
		}
		if be.Name != "" {
			name = string(be.Name)
		}
		target := s
		if ns != s.Namespace || name != s.Name {
			target = findService(b.m, ns, name)
		}
		if target == nil {
			continue
		}
		pn := port.Number
		if be.Port != nil {
			pn = int32(*be.Port)
		}
		tp, ok := findPort(target, pn)
		if !ok {
			continue
		}
		if be.Subset != "" && !hasSubset(target, string(be.Subset)) {
			continue
		}
		cn := b.need(target, tp, string(be.Subset))
		merged := false
		for i := range out {
			if out[i].Name == cn {
				out[i].Weight += uint32(w)
				merged = true
			}
		}
		if !merged {
			out = append(out, weighted{cn, uint32(w)})
		}
	}
	return out
}

func hasSubset(s *mesh.Service, name string) bool {
	for _, ss := range s.Subsets {
		if ss.Name == name {
			return true
		}
	}
	return false
}

// finishRoute sets timeouts, retries, hashing and faults on one route. A nil
// action answers 503: the route's backends do not exist.
func finishRoute(name string, match *routev3.RouteMatch, action *routev3.RouteAction, hash []*routev3.RouteAction_HashPolicy,
	timeouts *meshv1alpha1.Timeouts, retries *meshv1alpha1.RetryPolicy, fault *meshv1alpha1.FaultInjection, proxyless bool) *routev3.Route {
	r := &routev3.Route{Name: name, Match: match}
	if action == nil {
		r.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 503}}
		return r
	}
	// Copy: the same action serves several matches, each with its own copy.
	a := &routev3.RouteAction{ClusterSpecifier: action.ClusterSpecifier, HashPolicy: hash}
	// Envoy's default route timeout is 15s; the API's default is none.
	a.Timeout = durationpb.New(0)
	if timeouts != nil {
		if d := duration(string(orDefault(timeouts.Request, ""))); d != nil {
			a.Timeout = d
			if proxyless {
				a.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{MaxStreamDuration: d}
			}
		}
		a.IdleTimeout = duration(string(orDefault(timeouts.Idle, "")))
	}
	a.RetryPolicy = retryPolicy(retries)
	r.Action = &routev3.Route_Route{Route: a}
	if fault != nil {
		r.TypedPerFilterConfig = map[string]*anypb.Any{faultFilter: mustAny(httpFault(fault))}
	}
	return r
}

// defaultRetryOn are the failures retried when retries.retryOn is empty:
// the ones safe whatever the method.
var defaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-4xx"

// retryPolicy maps retries; nil when unset or when attempts is 0. The
// API's retryOn names are Envoy's x-envoy-retry-on and
// x-envoy-retry-grpc-on names, which share retry_on.
func retryPolicy(rp *meshv1alpha1.RetryPolicy) *routev3.RetryPolicy {
	if rp == nil {
		return nil
	}
	attempts := orDefault(rp.Attempts, defaultRetries)
	if attempts <= 0 {
		return nil
	}
	on := defaultRetryOn
	if len(rp.RetryOn) > 0 {
		names := make([]string, len(rp.RetryOn))
		for i, r := range rp.RetryOn {
			names[i] = string(r)
		}
		on = strings.Join(names, ",")
	}
	base, maxI := 25*time.Millisecond, time.Duration(0)
	if rp.Backoff != nil {
		if d := duration(string(orDefault(rp.Backoff.BaseInterval, ""))); d != nil {
			base = d.AsDuration()
		}
		if d := duration(string(orDefault(rp.Backoff.MaxInterval, ""))); d != nil {
			maxI = d.AsDuration()
		}
	}
	if maxI == 0 {
		maxI = 10 * base
	}
	out := &routev3.RetryPolicy{
		RetryOn:      on,
		NumRetries:   wrapperspb.UInt32(uint32(attempts)),
		RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(base), MaxInterval: durationpb.New(maxI)},
	}
	out.PerTryTimeout = duration(string(orDefault(rp.PerTryTimeout, "")))
	return out
}

// hashPolicies maps loadBalancer.hashOn onto the routes' hash_policy.
// grpc-go hashes on headers only; it skips cookie and source IP policies.
func hashPolicies(h *meshv1alpha1.HashOn) []*routev3.RouteAction_HashPolicy {
	switch {
	case h == nil:
		return nil
	case h.Header != nil:
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: strings.ToLower(string(*h.Header))},
		}}}
	case h.Cookie != nil:
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{
			Cookie: &routev3.RouteAction_HashPolicy_Cookie{Name: h.Cookie.Name, Ttl: duration(string(orDefault(h.Cookie.TTL, "")))},
		}}}
	case h.SourceIP != nil && *h.SourceIP:
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
		}}}
	}
	return nil
}

// grpcCodes are the gRPC status codes by name.
var grpcCodes = map[string]uint32{
	"CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
	"ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
	"ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
	"DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

// httpFault maps faultInjection onto the fault filter's per-route config.
func httpFault(f *meshv1alpha1.FaultInjection) *faultv3.HTTPFault {
	out := &faultv3.HTTPFault{}
	if d := f.Delay; d != nil {
		out.Delay = &faultcommonv3.FaultDelay{
			FaultDelaySecifier: &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: durationOr(string(d.FixedDelay), 0)},
			Percentage:         percent(d.Percentage),
		}
	}
	if a := f.Abort; a != nil {
		abort := &faultv3.FaultAbort{Percentage: percent(a.Percentage)}
		switch {
		case a.GRPCStatus != nil:
			abort.ErrorType = &faultv3.FaultAbort_GrpcStatus{GrpcStatus: grpcCodes[string(*a.GRPCStatus)]}
		case a.HTTPStatus != nil:
			abort.ErrorType = &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(*a.HTTPStatus)}
		}
		out.Abort = abort
	}
	return out
}

// percent is a share of requests, 100% when unset.
func percent(p *meshv1alpha1.Percent) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: uint32(orDefault(p, 100)), Denominator: typev3.FractionalPercent_HUNDRED}
}

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

// virtualHostDomains are the names a caller in namespace ns may use for s
// on port: the short name (from s's own namespace only, so that two
// namespaces' "api" never collide), name.ns, name.ns.svc and the FQDN, each
// bare and with :port, and every ClusterIP:port.
func virtualHostDomains(s *mesh.Service, port int32, ns string) []string {
	ps := ":" + strconv.Itoa(int(port))
	name := s.ServiceName
	if name == "" {
		name = s.Name
	}
	var names []string
	if s.Namespace == ns {
		names = append(names, name)
	}
	names = append(names, name+"."+s.Namespace, name+"."+s.Namespace+".svc")
	if s.Host != name+"."+s.Namespace+".svc" {
		names = append(names, s.Host)
	}
	out := make([]string, 0, 2*len(names)+len(s.ClusterIPs))
	for _, n := range names {
		out = append(out, n, n+ps)
	}
	for _, ip := range s.ClusterIPs {
		if strings.Contains(ip, ":") {
			out = append(out, "["+ip+"]"+ps)
		} else {
			out = append(out, ip+ps)
		}
	}
	return out
}

// catchAllVirtualHost answers requests for hosts no service claims: to the
// original destination under ALLOW_ANY, 502 under REGISTRY_ONLY.
func catchAllVirtualHost(allowAny bool) *routev3.VirtualHost {
	match := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	if allowAny {
		return &routev3.VirtualHost{Name: allowAnyVHost, Domains: []string{"*"}, Routes: []*routev3.Route{{
			Name:  allowAnyVHost,
			Match: match,
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: PassthroughCluster},
				Timeout:          durationpb.New(0),
			}},
		}}}
	}
	return &routev3.VirtualHost{Name: blockAllVHost, Domains: []string{"*"}, Routes: []*routev3.Route{{
		Name:   blockAllVHost,
		Match:  match,
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 502}},
	}}}
}

package translate

import (
	"regexp"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// authzFor is the authorization policies that protect port (a service
// port number) of s: those of s's namespace without a targetRef, or whose
// targetRef names s and either no port or this one. Model order (namespace,
// name) is kept.
func authzFor(m *mesh.Model, s *mesh.Service, port int32) []*mesh.AuthorizationPolicy {
	var out []*mesh.AuthorizationPolicy
	for _, ap := range m.AuthorizationPolicies {
		if ap.Namespace != s.Namespace || ap.Spec == nil {
			continue
		}
		if t := ap.Spec.TargetRef; t != nil {
			if string(t.Name) != s.Name || (t.Port != nil && int32(*t.Port) != port) {
				continue
			}
		}
		out = append(out, ap)
	}
	return out
}

// actionOf is a policy's action, ALLOW when unset.
func actionOf(ap *mesh.AuthorizationPolicy) meshv1alpha1.AuthorizationAction {
	if ap.Spec.Action == "" {
		return meshv1alpha1.ActionAllow
	}
	return ap.Spec.Action
}

// rbacSet is the RBAC rules of one inbound port, in the order the filters
// run: AUDIT (LOG, never refuses), DENY, then ALLOW. A nil entry means no
// filter.
type rbacSet struct {
	audit, deny, allow *rbacv3.RBAC
}

// authorization translates policies with Istio's semantics: a request
// matching a DENY policy is refused; else, when any ALLOW policy applies,
// it must match one; else the mesh's defaultAuthorization decides (DENY:
// an ALLOW filter with no policies, which refuses every request). AUDIT
// policies become a LOG filter that only marks matching requests.
//
// tcp selects the L4 form for the network RBAC filter: the HTTP-only parts
// (methods, paths, when) cannot be checked there, so an ALLOW or AUDIT rule
// using them matches nothing (it is left out) and a DENY rule drops them,
// matching more, as Istio does: never allow more than the policy says.
func authorization(settings meshconfig.Settings, policies []*mesh.AuthorizationPolicy, tcp bool) rbacSet {
	var set rbacSet
	add := func(dst **rbacv3.RBAC, action rbacv3.RBAC_Action, ap *mesh.AuthorizationPolicy, deny bool) {
		if *dst == nil {
			*dst = &rbacv3.RBAC{Action: action, Policies: map[string]*rbacv3.Policy{}}
		}
		for i := range ap.Spec.Rules {
			p, ok := rulePolicy(settings.TrustDomain, ap.Namespace, &ap.Spec.Rules[i], tcp, deny)
			if !ok {
				continue
			}
			(*dst).Policies["ns["+ap.Namespace+"]-policy["+ap.Name+"]-rule["+strconv.Itoa(i)+"]"] = p
		}
	}
	for _, ap := range policies {
		switch actionOf(ap) {
		case meshv1alpha1.ActionDeny:
			add(&set.deny, rbacv3.RBAC_DENY, ap, true)
		case meshv1alpha1.ActionAudit:
			add(&set.audit, rbacv3.RBAC_LOG, ap, false)
		default:
			add(&set.allow, rbacv3.RBAC_ALLOW, ap, false)
		}
	}
	if set.allow == nil && settings.DefaultAuthorization == meshconfig.AuthorizationDeny {
		set.allow = &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW}
	}
	return set
}

// rulePolicy is one rule as an Envoy policy: principals from "from" and
// "when" (all must hold), permissions from "to". ok is false when the rule
// is left out (see authorization).
func rulePolicy(trustDomain, ns string, r *meshv1alpha1.AuthorizationRule, tcp, deny bool) (*rbacv3.Policy, bool) {
	httpOnly := len(r.When) > 0
	for _, op := range r.To {
		httpOnly = httpOnly || len(op.Methods) > 0 || len(op.Paths) > 0
	}
	if tcp && httpOnly && !deny {
		return nil, false
	}
	var ids []*rbacv3.Principal
	if len(r.From) > 0 {
		alts := make([]*rbacv3.Principal, 0, len(r.From))
		for i := range r.From {
			alts = append(alts, sourcePrincipal(trustDomain, ns, &r.From[i]))
		}
		ids = append(ids, orIDs(alts))
	}
	if !tcp {
		for _, c := range r.When {
			alts := make([]*rbacv3.Principal, 0, len(c.Values))
			for _, v := range c.Values {
				alts = append(alts, &rbacv3.Principal{Identifier: &rbacv3.Principal_Header{Header: &routev3.HeaderMatcher{
					Name:                 strings.ToLower(string(c.Header)),
					HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(v)},
				}}})
			}
			ids = append(ids, orIDs(alts))
		}
	}
	p := &rbacv3.Policy{Principals: []*rbacv3.Principal{andIDs(ids)}}
	if len(r.To) == 0 {
		p.Permissions = []*rbacv3.Permission{anyPermission()}
		return p, true
	}
	alts := make([]*rbacv3.Permission, 0, len(r.To))
	for i := range r.To {
		alts = append(alts, operationPermission(&r.To[i], tcp))
	}
	p.Permissions = []*rbacv3.Permission{orRules(alts)}
	return p, true
}

// sourcePrincipal matches a caller when every field set matches.
func sourcePrincipal(trustDomain, ns string, s *meshv1alpha1.Source) *rbacv3.Principal {
	var and []*rbacv3.Principal
	if len(s.Principals) > 0 {
		alts := make([]*rbacv3.Principal, len(s.Principals))
		for i, p := range s.Principals {
			alts[i] = authenticated(principalMatcher(string(p)))
		}
		and = append(and, orIDs(alts))
	}
	if len(s.Namespaces) > 0 {
		alts := make([]*rbacv3.Principal, len(s.Namespaces))
		for i, n := range s.Namespaces {
			alts[i] = authenticated(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: regex(
				"spiffe://" + regexp.QuoteMeta(trustDomain) + "/ns/" + regexp.QuoteMeta(string(n)) + "/sa/[^/]+")}})
		}
		and = append(and, orIDs(alts))
	}
	if len(s.ServiceAccounts) > 0 {
		alts := make([]*rbacv3.Principal, len(s.ServiceAccounts))
		for i, sa := range s.ServiceAccounts {
			saNS, name, ok := strings.Cut(string(sa), "/")
			if !ok {
				saNS, name = ns, string(sa)
			}
			alts[i] = authenticated(exact("spiffe://" + trustDomain + "/ns/" + saNS + "/sa/" + name))
		}
		and = append(and, orIDs(alts))
	}
	if len(s.IPBlocks) > 0 {
		alts := make([]*rbacv3.Principal, 0, len(s.IPBlocks))
		for _, b := range s.IPBlocks {
			if c := cidr(string(b)); c != nil {
				alts = append(alts, &rbacv3.Principal{Identifier: &rbacv3.Principal_RemoteIp{RemoteIp: c}})
			}
		}
		and = append(and, orIDs(alts))
	}
	return andIDs(and)
}

// principalMatcher maps a Principal pattern: "*" any authenticated caller
// (nil), "x*" a prefix, "*x" a suffix, else exact.
func principalMatcher(p string) *matcherv3.StringMatcher {
	switch {
	case p == "*":
		return nil
	case strings.HasSuffix(p, "*"):
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: strings.TrimSuffix(p, "*")}}
	case strings.HasPrefix(p, "*"):
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: strings.TrimPrefix(p, "*")}}
	default:
		return exact(p)
	}
}

// authenticated matches a caller whose certificate's URI SAN (its SPIFFE
// ID) matches m; nil m matches any authenticated caller.
func authenticated(m *matcherv3.StringMatcher) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: m}}}
}

// cidr parses "a.b.c.d/n" (or a bare address); nil when malformed, which
// admission prevents.
func cidr(s string) *corev3.CidrRange {
	addr, bits, ok := strings.Cut(s, "/")
	n := 32
	if strings.Contains(addr, ":") {
		n = 128
	}
	if ok {
		v, err := strconv.Atoi(bits)
		if err != nil {
			return nil
		}
		n = v
	}
	return &corev3.CidrRange{AddressPrefix: addr, PrefixLen: wrapperspb.UInt32(uint32(n))}
}

// operationPermission matches a request when every field set matches; in
// the tcp form only ports count.
func operationPermission(op *meshv1alpha1.Operation, tcp bool) *rbacv3.Permission {
	var and []*rbacv3.Permission
	if len(op.Ports) > 0 {
		alts := make([]*rbacv3.Permission, len(op.Ports))
		for i, p := range op.Ports {
			alts[i] = &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: uint32(p)}}
		}
		and = append(and, orRules(alts))
	}
	if !tcp && len(op.Methods) > 0 {
		alts := make([]*rbacv3.Permission, len(op.Methods))
		for i, m := range op.Methods {
			alts[i] = &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &routev3.HeaderMatcher{
				Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(string(m))},
			}}}
		}
		and = append(and, orRules(alts))
	}
	if !tcp && len(op.Paths) > 0 {
		alts := make([]*rbacv3.Permission, 0, len(op.Paths))
		for _, p := range op.Paths {
			var sm *matcherv3.StringMatcher
			switch {
			case p.Exact != nil:
				sm = exact(*p.Exact)
			case p.Prefix != nil && strings.HasSuffix(*p.Prefix, "/"):
				sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: *p.Prefix}}
			case p.Prefix != nil:
				sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: regex(regexp.QuoteMeta(*p.Prefix) + "(/.*)?")}}
			case p.Regex != nil:
				sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: regex(*p.Regex)}}
			default:
				continue
			}
			alts = append(alts, &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{
				Rule: &matcherv3.PathMatcher_Path{Path: sm},
			}}})
		}
		and = append(and, orRules(alts))
	}
	if len(and) == 0 {
		return anyPermission()
	}
	if len(and) == 1 {
		return and[0]
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: and}}}
}

func anyPermission() *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: true}}
}

// orRules is one of alts; a single one stands alone.
func orRules(alts []*rbacv3.Permission) *rbacv3.Permission {
	if len(alts) == 1 {
		return alts[0]
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: alts}}}
}

// orIDs is one of alts; a single one stands alone; none matches nothing.
func orIDs(alts []*rbacv3.Principal) *rbacv3.Principal {
	switch len(alts) {
	case 0:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_NotId{NotId: anyPrincipal()}}
	case 1:
		return alts[0]
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: alts}}}
}

// andIDs is all of ids; none is any caller.
func andIDs(ids []*rbacv3.Principal) *rbacv3.Principal {
	switch len(ids) {
	case 0:
		return anyPrincipal()
	case 1:
		return ids[0]
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: ids}}}
}

func anyPrincipal() *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}}
}

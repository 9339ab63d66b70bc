package mesh

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// SameClaim reports whether two policy targets claim the same thing: the
// same MeshService and either the same port or, both, the whole service.
// A per-port claim and a service-wide claim on one service do not conflict.
func SameClaim(a, b meshv1alpha1.PolicyTargetReference) bool {
	if a.Name != b.Name || (a.Port == nil) != (b.Port == nil) {
		return false
	}
	return a.Port == nil || *a.Port == *b.Port
}

// OlderPolicy reports whether a is older than b: created earlier, or at the
// same time (timestamps have whole seconds) with a name that sorts first.
// The older of two policies with the same claim wins it.
func OlderPolicy(a, b *meshv1alpha1.TrafficPolicy) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// OlderClaimant returns the name of the oldest policy among others that
// claims the same target and port as tp, in tp's namespace, and is older
// than tp; "" when tp wins its claim. Policies being deleted and tp itself
// (same namespace and name) are not rivals.
func OlderClaimant(tp *meshv1alpha1.TrafficPolicy, others []meshv1alpha1.TrafficPolicy) string {
	var winner *meshv1alpha1.TrafficPolicy
	for i := range others {
		o := &others[i]
		if o.Namespace != tp.Namespace || o.Name == tp.Name || o.DeletionTimestamp != nil ||
			!SameClaim(o.Spec.TargetRef, tp.Spec.TargetRef) || !OlderPolicy(o, tp) {
			continue
		}
		if winner == nil || OlderPolicy(o, winner) {
			winner = o
		}
	}
	if winner == nil {
		return ""
	}
	return winner.Name
}

// InvalidRegexes checks every regular expression in a policy with RE2
// syntax, which is what the proxies use, and names the field of each one
// that does not compile. A policy with any is not accepted, yet still
// holds its claim.
func InvalidRegexes(spec *meshv1alpha1.TrafficPolicySpec) []string {
	var errs []string
	check := func(field string, re *string) {
		if re == nil {
			return
		}
		if _, err := regexp.Compile(*re); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", field, err))
		}
	}
	for i, route := range spec.Routes {
		for j, m := range route.Matches {
			base := fmt.Sprintf("spec.routes[%d].matches[%d]", i, j)
			if m.Path != nil {
				check(base+".path.regex", m.Path.Regex)
			}
			for k, h := range m.Headers {
				check(fmt.Sprintf("%s.headers[%d].regex", base, k), h.Regex)
			}
			for k, q := range m.QueryParams {
				check(fmt.Sprintf("%s.queryParams[%d].regex", base, k), q.Regex)
			}
		}
	}
	return errs
}

// claim is what a TrafficPolicy claims: a MeshService, and a port or 0 for all.
type claim struct {
	namespace, target string
	port              int32
}

// attachPolicies gives each service the TrafficPolicies in force for it,
// sorted by port. Of the policies that claim the same service and port, the
// oldest wins; it is in force when its regexes compile, its target is in
// services and its port, if any, is a meshed port. A losing policy is never
// in force, even when the winner is not either: that is the Conflicted
// status the controllers report.
func attachPolicies(services []*Service, policies []meshv1alpha1.TrafficPolicy) {
	winners := make(map[claim]*meshv1alpha1.TrafficPolicy)
	for i := range policies {
		tp := &policies[i]
		if tp.DeletionTimestamp != nil {
			continue
		}
		k := claim{tp.Namespace, string(tp.Spec.TargetRef.Name), 0}
		if tp.Spec.TargetRef.Port != nil {
			k.port = int32(*tp.Spec.TargetRef.Port)
		}
		if w, ok := winners[k]; !ok || OlderPolicy(tp, w) {
			winners[k] = tp
		}
	}
	byName := make(map[nsName]*Service, len(services))
	for _, s := range services {
		byName[nsName{s.Namespace, s.Name}] = s
	}
	for k, tp := range winners {
		s, ok := byName[nsName{k.namespace, k.target}]
		kind := tp.Spec.TargetRef.Kind
		if !ok || (kind != "" && kind != meshv1alpha1.TargetKindMeshService) || len(InvalidRegexes(&tp.Spec)) > 0 {
			continue
		}
		if k.port != 0 && !slices.ContainsFunc(s.Ports, func(p Port) bool { return p.Number == k.port }) {
			continue
		}
		s.Policies = append(s.Policies, &TrafficPolicy{
			Name: tp.Name, Namespace: tp.Namespace, Generation: tp.Generation, Port: k.port, Spec: tp.Spec.DeepCopy(),
		})
	}
	for _, s := range services {
		slices.SortFunc(s.Policies, func(a, b *TrafficPolicy) int { return cmp.Compare(a.Port, b.Port) })
	}
}

package translate

import (
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
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
	// A RouteAction per route; the cluster specifier and hash policies are
	// shared between the routes of one API route, read-only like the rest.
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
	a.RetryPolicy = retryPolicy(retries, proxyless)
	r.Action = &routev3.Route_Route{Route: a}
	if fault != nil {
		r.TypedPerFilterConfig = map[string]*anypb.Any{faultFilter: mustAny(httpFault(fault))}
	}
	return r
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

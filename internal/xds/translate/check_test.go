package translate

import (
	"errors"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// validate runs protoc-gen-validate's ValidateAll on every resource and on
// every message packed in an Any inside it (typed configs), which the
// resource's own ValidateAll does not open.
func validate(r *Resources) error {
	var errs []error
	for _, m := range allMessages(r) {
		if err := validateDeep(m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func validateDeep(m proto.Message) error {
	v, ok := m.(interface{ ValidateAll() error })
	if !ok {
		return fmt.Errorf("%T has no ValidateAll", m)
	}
	if err := v.ValidateAll(); err != nil {
		return fmt.Errorf("%T: %w", m, err)
	}
	var errs []error
	walkAnys(m.ProtoReflect(), func(a *anypb.Any) {
		inner, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Errorf("unpack %s: %w", a.GetTypeUrl(), err))
			return
		}
		if err := validateDeep(inner); err != nil {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

// walkAnys calls f for each Any directly reachable in m (not inside another Any).
func walkAnys(m protoreflect.Message, f func(*anypb.Any)) {
	if a, ok := m.Interface().(*anypb.Any); ok {
		f(a)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				walkAnys(v.List().Get(i).Message(), f)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				walkAnys(mv.Message(), f)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			walkAnys(v.Message(), f)
		}
		return true
	})
}

// consistent checks what a snapshot's consistency check and a proxy need
// (Envoy refuses a listener whose chains share a match and a route
// configuration with a domain twice):
// every RDS name a listener uses is in Routes, every cluster a route or a
// tcp_proxy sends to is in Clusters, every EDS cluster has a
// ClusterLoadAssignment and every ClusterLoadAssignment a cluster.
func consistent(r *Resources) error {
	routes := map[string]*routev3.RouteConfiguration{}
	for _, rc := range r.Routes {
		routes[rc.GetName()] = rc
	}
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range r.Clusters {
		clusters[c.GetName()] = c
	}
	clas := map[string]bool{}
	for _, e := range r.Endpoints {
		clas[e.GetClusterName()] = true
		if clusters[e.GetClusterName()] == nil {
			return fmt.Errorf("ClusterLoadAssignment %s has no cluster", e.GetClusterName())
		}
	}
	var errs []error
	needCluster := func(from, name string) {
		if clusters[name] == nil {
			errs = append(errs, fmt.Errorf("%s sends to cluster %q, which is not in Clusters", from, name))
		}
	}
	checkRoutes := func(from string, rc *routev3.RouteConfiguration) {
		for _, vh := range rc.GetVirtualHosts() {
			for _, rt := range vh.GetRoutes() {
				a := rt.GetRoute()
				if a == nil {
					continue
				}
				if c := a.GetCluster(); c != "" {
					needCluster(from+" route "+rt.GetName(), c)
				}
				for _, w := range a.GetWeightedClusters().GetClusters() {
					needCluster(from+" route "+rt.GetName(), w.GetName())
				}
			}
		}
	}
	checkHCM := func(from string, h *hcmv3.HttpConnectionManager) {
		if rds := h.GetRds(); rds != nil {
			if routes[rds.GetRouteConfigName()] == nil {
				errs = append(errs, fmt.Errorf("%s uses RDS %q, which is not in Routes", from, rds.GetRouteConfigName()))
			}
		}
		if rc := h.GetRouteConfig(); rc != nil {
			checkRoutes(from, rc)
		}
	}
	checkFilters := func(from string, fc *listenerv3.FilterChain) {
		for _, f := range fc.GetFilters() {
			inner, err := f.GetTypedConfig().UnmarshalNew()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", from, err))
				continue
			}
			switch c := inner.(type) {
			case *hcmv3.HttpConnectionManager:
				checkHCM(from, c)
			case *tcpproxyv3.TcpProxy:
				if n := c.GetCluster(); n != "" {
					needCluster(from, n)
				}
				for _, w := range c.GetWeightedClusters().GetClusters() {
					needCluster(from, w.GetName())
				}
			}
		}
	}
	for _, l := range r.Listeners {
		matches := map[string]string{}
		for _, fc := range l.GetFilterChains() {
			key, _ := proto.MarshalOptions{Deterministic: true}.Marshal(fc.GetFilterChainMatch())
			if other, ok := matches[string(key)]; ok {
				errs = append(errs, fmt.Errorf("listener %s: chains %s and %s have the same match", l.GetName(), other, fc.GetName()))
			}
			matches[string(key)] = fc.GetName()
			checkFilters("listener "+l.GetName()+" chain "+fc.GetName(), fc)
		}
		if fc := l.GetDefaultFilterChain(); fc != nil {
			checkFilters("listener "+l.GetName()+" default chain", fc)
		}
		if al := l.GetApiListener(); al != nil {
			h := &hcmv3.HttpConnectionManager{}
			if err := al.GetApiListener().UnmarshalTo(h); err != nil {
				errs = append(errs, fmt.Errorf("api listener %s: %w", l.GetName(), err))
				continue
			}
			checkHCM("api listener "+l.GetName(), h)
		}
	}
	for _, rc := range r.Routes {
		checkRoutes("route configuration "+rc.GetName(), rc)
		domains, names := map[string]bool{}, map[string]bool{}
		for _, vh := range rc.GetVirtualHosts() {
			if names[vh.GetName()] {
				errs = append(errs, fmt.Errorf("route configuration %s: two virtual hosts named %s", rc.GetName(), vh.GetName()))
			}
			names[vh.GetName()] = true
			for _, d := range vh.GetDomains() {
				if domains[d] {
					errs = append(errs, fmt.Errorf("route configuration %s: domain %s twice", rc.GetName(), d))
				}
				domains[d] = true
			}
		}
	}
	for _, c := range r.Clusters {
		if c.GetType() == clusterv3.Cluster_EDS {
			name := c.GetEdsClusterConfig().GetServiceName()
			if name == "" {
				name = c.GetName()
			}
			if !clas[name] {
				errs = append(errs, fmt.Errorf("EDS cluster %s has no ClusterLoadAssignment", c.GetName()))
			}
		}
	}
	return errors.Join(errs...)
}

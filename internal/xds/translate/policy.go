package translate

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
)

// policyFor is the TrafficPolicy in force for one port of a service: the
// port's own policy, else the service-wide one (Port 0), else nil.
func policyFor(s *mesh.Service, port int32) *mesh.TrafficPolicy {
	var wide *mesh.TrafficPolicy
	for _, p := range s.Policies {
		if p.Spec == nil {
			continue
		}
		switch p.Port {
		case port:
			return p
		case 0:
			wide = p
		}
	}
	return wide
}

// specOf is a policy's spec, or nil for no policy.
func specOf(p *mesh.TrafficPolicy) *meshv1alpha1.TrafficPolicySpec {
	if p == nil {
		return nil
	}
	return p.Spec
}

// duration converts an API duration; the API server has checked its form,
// so a malformed one (impossible through admission) converts to nil.
func duration(d string) *durationpb.Duration {
	if d == "" {
		return nil
	}
	v, err := time.ParseDuration(d)
	if err != nil {
		return nil
	}
	return durationpb.New(v)
}

// durationOr converts d, or def when d is empty.
func durationOr(d string, def time.Duration) *durationpb.Duration {
	if v := duration(d); v != nil {
		return v
	}
	return durationpb.New(def)
}

// exportedTo reports whether s may be seen from namespace ns: exportTo empty
// or "*" exports everywhere, "." to the service's own namespace, a name to
// that namespace.
func exportedTo(s *mesh.Service, ns string) bool {
	if len(s.ExportTo) == 0 {
		return true
	}
	for _, e := range s.ExportTo {
		switch e {
		case "*":
			return true
		case ".":
			if s.Namespace == ns {
				return true
			}
		default:
			if e == ns {
				return true
			}
		}
	}
	return false
}

// findService is the service named name in namespace ns, or nil.
// m.Services is sorted by namespace then name.
func findService(m *mesh.Model, ns, name string) *mesh.Service {
	lo, hi := 0, len(m.Services)
	for lo < hi {
		mid := (lo + hi) / 2
		s := m.Services[mid]
		if s.Namespace < ns || (s.Namespace == ns && s.Name < name) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(m.Services) && m.Services[lo].Namespace == ns && m.Services[lo].Name == name {
		return m.Services[lo]
	}
	// The model promises sorted services; fall back to a scan if a caller
	// built one that is not.
	for _, s := range m.Services {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

// findPort is the port numbered n of s.
func findPort(s *mesh.Service, n int32) (mesh.Port, bool) {
	for _, p := range s.Ports {
		if p.Number == n {
			return p, true
		}
	}
	return mesh.Port{}, false
}

// serviceRef is the Sources entry of a MeshService.
func serviceRef(s *mesh.Service) mesh.ObjectRef {
	return mesh.ObjectRef{Kind: "MeshService", Namespace: s.Namespace, Name: s.Name, Generation: s.Generation}
}

// policyRef is the Sources entry of a TrafficPolicy.
func policyRef(p *mesh.TrafficPolicy) mesh.ObjectRef {
	return mesh.ObjectRef{Kind: "TrafficPolicy", Namespace: p.Namespace, Name: p.Name, Generation: p.Generation}
}

// authzRef is the Sources entry of an AuthorizationPolicy.
func authzRef(p *mesh.AuthorizationPolicy) mesh.ObjectRef {
	return mesh.ObjectRef{Kind: "AuthorizationPolicy", Namespace: p.Namespace, Name: p.Name, Generation: p.Generation}
}

// orDefault is *v, or def when v is nil.
func orDefault[T any](v *T, def T) T {
	if v == nil {
		return def
	}
	return *v
}

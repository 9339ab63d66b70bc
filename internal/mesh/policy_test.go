package mesh

import (
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

func TestSameClaim(t *testing.T) {
	ref := func(name string, port int32) meshv1alpha1.PolicyTargetReference {
		r := meshv1alpha1.PolicyTargetReference{Name: meshv1alpha1.ObjectName(name)}
		if port != 0 {
			r.Port = ptr.To(meshv1alpha1.PortNumber(port))
		}
		return r
	}
	tests := []struct {
		name string
		// a and b are the two targets.
		a, b meshv1alpha1.PolicyTargetReference
		// want is whether they conflict.
		want bool
	}{
		{name: "same service, both whole", a: ref("catalog", 0), b: ref("catalog", 0), want: true},
		{name: "same service and port", a: ref("catalog", 80), b: ref("catalog", 80), want: true},
		{name: "same service, other port", a: ref("catalog", 80), b: ref("catalog", 81), want: false},
		{name: "port and whole service", a: ref("catalog", 80), b: ref("catalog", 0), want: false},
		{name: "whole service and port", a: ref("catalog", 0), b: ref("catalog", 80), want: false},
		{name: "other service", a: ref("catalog", 0), b: ref("cart", 0), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SameClaim(tt.a, tt.b); got != tt.want {
				t.Errorf("SameClaim = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOlderPolicy(t *testing.T) {
	tests := []struct {
		name string
		// a and b are the policies compared.
		a, b meshv1alpha1.TrafficPolicy
		// want is whether a is older than b.
		want bool
	}{
		{name: "created earlier", a: trafficPolicy("shop", "zeta", "catalog", 0, 0), b: trafficPolicy("shop", "alpha", "catalog", 0, 1), want: true},
		{name: "created later", a: trafficPolicy("shop", "alpha", "catalog", 0, 1), b: trafficPolicy("shop", "zeta", "catalog", 0, 0), want: false},
		{name: "same second, name first", a: trafficPolicy("shop", "alpha", "catalog", 0, 0), b: trafficPolicy("shop", "beta", "catalog", 0, 0), want: true},
		{name: "same second, name second", a: trafficPolicy("shop", "beta", "catalog", 0, 0), b: trafficPolicy("shop", "alpha", "catalog", 0, 0), want: false},
		{name: "itself", a: trafficPolicy("shop", "alpha", "catalog", 0, 0), b: trafficPolicy("shop", "alpha", "catalog", 0, 0), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OlderPolicy(&tt.a, &tt.b); got != tt.want {
				t.Errorf("OlderPolicy = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOlderClaimant(t *testing.T) {
	tp := trafficPolicy("shop", "mine", "catalog", 80, 10)
	tests := []struct {
		name string
		// others are the rivals tp is checked against (tp itself may be among them).
		others []meshv1alpha1.TrafficPolicy
		// want is the winner's name, "" when tp wins.
		want string
	}{
		{name: "alone", others: []meshv1alpha1.TrafficPolicy{tp}, want: ""},
		{name: "younger rival", others: []meshv1alpha1.TrafficPolicy{tp, trafficPolicy("shop", "late", "catalog", 80, 20)}, want: ""},
		{
			name:   "the oldest of two older rivals",
			others: []meshv1alpha1.TrafficPolicy{trafficPolicy("shop", "old", "catalog", 80, 5), tp, trafficPolicy("shop", "oldest", "catalog", 80, 1)},
			want:   "oldest",
		},
		{
			name:   "same second: the first name",
			others: []meshv1alpha1.TrafficPolicy{trafficPolicy("shop", "b", "catalog", 80, 3), trafficPolicy("shop", "a", "catalog", 80, 3)},
			want:   "a",
		},
		{
			name: "older policies with other claims are not rivals",
			others: []meshv1alpha1.TrafficPolicy{
				trafficPolicy("shop", "whole", "catalog", 0, 0), trafficPolicy("shop", "other-port", "catalog", 81, 0),
				trafficPolicy("shop", "other-target", "cart", 80, 0), trafficPolicy("web", "other-namespace", "catalog", 80, 0),
			},
			want: "",
		},
		{name: "a policy being deleted is no rival", others: []meshv1alpha1.TrafficPolicy{func() meshv1alpha1.TrafficPolicy {
			p := trafficPolicy("shop", "gone", "catalog", 80, 0)
			deleting(&p.ObjectMeta)
			return p
		}()}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OlderClaimant(&tp, tt.others); got != tt.want {
				t.Errorf("OlderClaimant = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInvalidRegexes(t *testing.T) {
	spec := meshv1alpha1.TrafficPolicySpec{Routes: []meshv1alpha1.Route{{Matches: []meshv1alpha1.RouteMatch{
		{Path: &meshv1alpha1.PathMatch{Regex: ptr.To("/api/[0-9]+")}},
		{Headers: []meshv1alpha1.HeaderMatch{{Name: "x-user", Regex: ptr.To("(unclosed")}}},
		{QueryParams: []meshv1alpha1.HeaderMatch{{Name: "q", Regex: ptr.To("a**")}}},
	}}}}
	got := InvalidRegexes(&spec)
	if len(got) != 2 || !strings.HasPrefix(got[0], "spec.routes[0].matches[1].headers[0].regex: ") ||
		!strings.HasPrefix(got[1], "spec.routes[0].matches[2].queryParams[0].regex: ") {
		t.Errorf("InvalidRegexes = %q, want the header and query parameter regexes named", got)
	}
}

func TestBuildTrafficPolicies(t *testing.T) {
	badRegex := trafficPolicy("shop", "bad-regex", "catalog", 0, 0)
	badRegex.Spec.Routes = []meshv1alpha1.Route{{Matches: []meshv1alpha1.RouteMatch{{Path: &meshv1alpha1.PathMatch{Regex: ptr.To("(")}}}}}
	tests := []struct {
		name string
		// policies are every TrafficPolicy in the cluster.
		policies []meshv1alpha1.TrafficPolicy
		// want are the policies in force for shop/catalog, as "name:port", sorted by port.
		want []string
	}{
		{
			name: "the older of two whole-service policies wins",
			policies: []meshv1alpha1.TrafficPolicy{
				trafficPolicy("shop", "newer", "catalog", 0, 60), trafficPolicy("shop", "older", "catalog", 0, 0),
			},
			want: []string{"older:0"},
		},
		{
			name: "same creation second: the first name wins",
			policies: []meshv1alpha1.TrafficPolicy{
				trafficPolicy("shop", "b", "catalog", 80, 0), trafficPolicy("shop", "a", "catalog", 80, 0),
			},
			want: []string{"a:80"},
		},
		{
			name: "per-port and service-wide policies are both kept, sorted by port",
			policies: []meshv1alpha1.TrafficPolicy{
				trafficPolicy("shop", "grpc", "catalog", 9000, 0), trafficPolicy("shop", "http", "catalog", 80, 0),
				trafficPolicy("shop", "whole", "catalog", 0, 30),
			},
			want: []string{"whole:0", "http:80", "grpc:9000"},
		},
		{
			name: "a policy to a port the service does not mesh is dropped",
			policies: []meshv1alpha1.TrafficPolicy{
				trafficPolicy("shop", "no-port", "catalog", 81, 0), trafficPolicy("shop", "http", "catalog", 80, 0),
			},
			want: []string{"http:80"},
		},
		{
			name: "a policy to a missing target, or in another namespace, is dropped",
			policies: []meshv1alpha1.TrafficPolicy{
				trafficPolicy("shop", "no-target", "ghost", 0, 0), trafficPolicy("web", "elsewhere", "catalog", 0, 0),
			},
			want: nil,
		},
		{
			name: "an older winner that is dropped still beats the younger one",
			policies: []meshv1alpha1.TrafficPolicy{
				badRegex, trafficPolicy("shop", "good", "catalog", 0, 10),
			},
			want: nil,
		},
		{
			name: "a deleted older policy leaves the claim to the next",
			policies: func() []meshv1alpha1.TrafficPolicy {
				old := trafficPolicy("shop", "old", "catalog", 0, 0)
				deleting(&old.ObjectMeta)
				return []meshv1alpha1.TrafficPolicy{old, trafficPolicy("shop", "next", "catalog", 0, 10)}
			}(),
			want: []string{"next:0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Build(Inputs{
				MeshServices: []meshv1alpha1.MeshService{meshService("shop", "catalog"), meshService("web", "front")},
				Services: []corev1.Service{
					service("shop", "catalog", []string{"10.96.0.10"}, svcPort("http", 80, 8080), svcPort("grpc", 9000, 9000)),
					service("web", "front", []string{"10.96.0.11"}, svcPort("http", 80, 8080)),
				},
				TrafficPolicies: tt.policies,
			})
			var got []string
			for _, s := range m.Services {
				if s.Namespace != "shop" {
					if len(s.Policies) > 0 {
						t.Errorf("%s/%s has policies %+v, want none", s.Namespace, s.Name, s.Policies)
					}
					continue
				}
				for _, p := range s.Policies {
					got = append(got, p.Name+":"+strconv.Itoa(int(p.Port)))
					if p.Namespace != "shop" || p.Generation != 1 || p.Spec == nil || string(p.Spec.TargetRef.Name) != "catalog" {
						t.Errorf("policy %s carries %+v", p.Name, p)
					}
				}
			}
			mustEqual(t, "policies in force", got, tt.want)
		})
	}
}

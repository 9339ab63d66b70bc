package crd_test

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"

	v1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// The objects below are valid (TestValidObjectsAccepted creates them); each
// invalid case changes one thing in one of them.

// meshService returns a valid MeshService for the Service catalog, changed by edit.
func meshService(edit func(*v1.MeshServiceSpec)) *v1.MeshService {
	ms := &v1.MeshService{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "catalog-"},
		Spec: v1.MeshServiceSpec{
			Ports: []v1.MeshServicePort{{Port: 8080, Name: "http", Protocol: v1.ProtocolHTTP}},
			Subsets: []v1.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"}},
			},
		},
	}
	edit(&ms.Spec)
	return ms
}

// trafficPolicy returns a valid TrafficPolicy for MeshService catalog, changed by edit.
func trafficPolicy(edit func(*v1.TrafficPolicySpec)) *v1.TrafficPolicy {
	tp := &v1.TrafficPolicy{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "catalog-"},
		Spec:       v1.TrafficPolicySpec{TargetRef: v1.PolicyTargetReference{Name: "catalog"}},
	}
	edit(&tp.Spec)
	return tp
}

// route returns a valid route with one backend, subset v1, changed by edit,
// as the only route of a TrafficPolicy.
func route(edit func(*v1.Route)) *v1.TrafficPolicy {
	return trafficPolicy(func(s *v1.TrafficPolicySpec) {
		r := v1.Route{Name: "r", Backends: []v1.Backend{{Subset: "v1"}}}
		edit(&r)
		s.Routes = []v1.Route{r}
	})
}

// authorizationPolicy returns a valid ALLOW policy for MeshService catalog, changed by edit.
func authorizationPolicy(edit func(*v1.AuthorizationPolicySpec)) *v1.AuthorizationPolicy {
	ap := &v1.AuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "catalog-"},
		Spec: v1.AuthorizationPolicySpec{
			TargetRef: &v1.PolicyTargetReference{Name: "catalog"},
			Action:    v1.ActionAllow,
			Rules: []v1.AuthorizationRule{{
				From: []v1.Source{{Principals: []v1.Principal{"spiffe://cluster.local/ns/default/sa/frontend"}}},
				To:   []v1.Operation{{Methods: []v1.HTTPMethod{"GET"}}},
			}},
		},
	}
	edit(&ap.Spec)
	return ap
}

// source returns a valid policy whose only rule's only source is s.
func source(s v1.Source) *v1.AuthorizationPolicy {
	return authorizationPolicy(func(p *v1.AuthorizationPolicySpec) { p.Rules[0].From = []v1.Source{s} })
}

// operation returns a valid policy whose only rule's only operation is o.
func operation(o v1.Operation) *v1.AuthorizationPolicy {
	return authorizationPolicy(func(p *v1.AuthorizationPolicySpec) { p.Rules[0].To = []v1.Operation{o} })
}

// fromYAML decodes one object, for a case that Go types cannot write, such as
// a required field left out.
func fromYAML(doc string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		panic(fmt.Sprintf("decode %q: %v", doc, err))
	}
	return u
}

func ptr[T any](v T) *T { return &v }

func dur(s string) *v1.Duration { return ptr(v1.Duration(s)) }

func pdur(s string) *v1.PositiveDuration { return ptr(v1.PositiveDuration(s)) }

// outlier is a valid outlierDetection, which failover needs.
var outlier = &v1.OutlierDetection{Consecutive5xx: ptr(int32(5))}

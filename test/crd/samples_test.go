package crd_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/testenv"
)

var samplesDir = filepath.Join(testenv.RepoRoot(), "config", "samples")

// sampleFiles returns the names of the sample manifests in config/samples,
// kustomization.yaml left out.
func sampleFiles(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(samplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		if name := filepath.Base(p); name != "kustomization.yaml" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		t.Fatalf("no samples in %s", samplesDir)
	}
	return names
}

// decodeAll decodes every object of a YAML file.
func decodeAll(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var objs []*unstructured.Unstructured
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// TestSamplesAccepted applies every sample, as `kubectl apply -f` would, in a
// fresh namespace, and checks the result: one sample per kind, defaults
// applied, and references that resolve among the samples themselves.
func TestSamplesAccepted(t *testing.T) {
	ns := newNamespace(t, "samples")
	kinds := map[string]bool{}
	for _, name := range sampleFiles(t) {
		t.Run(name, func(t *testing.T) {
			objs := decodeAll(t, filepath.Join(samplesDir, name))
			if len(objs) == 0 {
				t.Fatal("no objects")
			}
			for _, u := range objs {
				if u.GetNamespace() != "" {
					t.Errorf("%s %s sets metadata.namespace %q; a sample goes to the namespace kubectl is given", u.GetKind(), u.GetName(), u.GetNamespace())
				}
				u.SetNamespace(ns)
				if err := k8s.Create(t.Context(), u); err != nil {
					t.Errorf("create %s %s: %v", u.GetKind(), u.GetName(), err)
				}
				kinds[u.GetKind()] = true
			}
		})
	}
	for _, kind := range []string{"MeshService", "TrafficPolicy", "AuthorizationPolicy"} {
		if !kinds[kind] {
			t.Errorf("no sample of %s", kind)
		}
	}

	var services v1.MeshServiceList
	var traffic v1.TrafficPolicyList
	var authz v1.AuthorizationPolicyList
	for _, list := range []client.ObjectList{&services, &traffic, &authz} {
		if err := k8s.List(t.Context(), list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("defaults", func(t *testing.T) {
		tp := &v1.TrafficPolicy{}
		if err := k8s.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "catalog"}, tp); err != nil {
			t.Fatalf("get TrafficPolicy catalog: %v", err)
		}
		s := tp.Spec
		// The header route's backend leaves out its weight.
		if len(s.Routes) == 0 || len(s.Routes[0].Backends) == 0 || s.Routes[0].Backends[0].Weight == nil || *s.Routes[0].Backends[0].Weight != 1 {
			t.Errorf("routes[0].backends = %+v; want the first backend's weight defaulted to 1", s.Routes)
		}
		if s.OutlierDetection == nil || s.OutlierDetection.Interval != "10s" || s.OutlierDetection.BaseEjectionTime != "30s" {
			t.Errorf("outlierDetection = %+v; want interval 10s and baseEjectionTime 30s by default", s.OutlierDetection)
		}
		if s.Retries == nil || s.Retries.Budget == nil || s.Retries.Budget.MinRetryConcurrency == nil || *s.Retries.Budget.MinRetryConcurrency != 3 {
			t.Errorf("retries = %+v; want budget.minRetryConcurrency 3 by default", s.Retries)
		}
	})

	t.Run("references resolve among the samples", func(t *testing.T) {
		meshServices := map[string]*v1.MeshService{}
		for i := range services.Items {
			meshServices[services.Items[i].Name] = &services.Items[i]
		}
		resolve := func(what, name, subset string) {
			ms, ok := meshServices[name]
			switch {
			case !ok:
				t.Errorf("%s names MeshService %q, which no sample defines", what, name)
			case subset != "" && !ms.HasSubset(subset):
				t.Errorf("%s names subset %q, which MeshService %s does not declare", what, subset, name)
			}
		}
		for _, tp := range traffic.Items {
			target := string(tp.Spec.TargetRef.Name)
			resolve("TrafficPolicy "+tp.Name+" targetRef", target, "")
			for _, r := range tp.Spec.Routes {
				for _, b := range r.Backends {
					if b.Namespace != "" && string(b.Namespace) != ns {
						t.Errorf("TrafficPolicy %s route %s has a backend in namespace %s", tp.Name, r.Name, b.Namespace)
					}
					name := string(b.Name)
					if name == "" {
						name = target
					}
					resolve("TrafficPolicy "+tp.Name+" route "+r.Name, name, string(b.Subset))
				}
			}
			if tp.Spec.Failover != nil {
				for _, f := range tp.Spec.Failover.Services {
					resolve("TrafficPolicy "+tp.Name+" failover", string(f.Name), "")
				}
			}
		}
		for _, ap := range authz.Items {
			if ap.Spec.TargetRef != nil {
				resolve("AuthorizationPolicy "+ap.Name+" targetRef", string(ap.Spec.TargetRef.Name), "")
			}
		}
	})
}

// TestSamplesKustomization checks that config/samples/kustomization.yaml
// lists every sample, so that `kubectl apply -k config/samples` applies them all.
func TestSamplesKustomization(t *testing.T) {
	objs := decodeAll(t, filepath.Join(samplesDir, "kustomization.yaml"))
	if len(objs) != 1 {
		t.Fatalf("kustomization.yaml holds %d documents; want 1", len(objs))
	}
	listed, _, err := unstructured.NestedStringSlice(objs[0].Object, "resources")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(listed)
	if want := sampleFiles(t); !slices.Equal(listed, want) {
		t.Errorf("kustomization.yaml lists %v; want the samples %v", listed, want)
	}
}

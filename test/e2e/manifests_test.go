//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// applyFile creates every object of a multi-document YAML file in namespace
// ns, leaving out Namespace objects.
func applyFile(t *testing.T, path, ns string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return
			}
			t.Fatalf("decode %s: %v", path, err)
		}
		if len(obj.Object) == 0 || obj.GetKind() == "Namespace" || obj.GetKind() == "Kustomization" {
			continue
		}
		obj.SetNamespace(ns)
		if err := k8s.Create(t.Context(), obj); err != nil {
			t.Fatalf("create %s %s from %s: %v", obj.GetKind(), obj.GetName(), path, err)
		}
	}
}

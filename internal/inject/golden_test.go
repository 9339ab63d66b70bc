package inject

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/skeinmesh/skein/internal/golden"
)

// refreshGolden rewrites the golden files instead of comparing with them.
var refreshGolden = os.Getenv("REFRESH_GOLDEN") != ""

// goldenInput is a testdata/<case>.in.yaml file.
type goldenInput struct {
	// Namespace is the pod's namespace; absent, one with no annotation or label.
	Namespace *corev1.Namespace `json:"namespace,omitempty"`
	// NativeSidecars, when set, replaces Config.NativeSidecars (false: an API
	// server older than 1.29).
	NativeSidecars *bool `json:"nativeSidecars,omitempty"`
	// Want is the reason Decide must give.
	Want Reason `json:"want"`
	// Pod is the pod as the webhook receives it.
	Pod corev1.Pod `json:"pod"`
}

// TestGolden runs every testdata/<case>.in.yaml through Decide and, when it
// says inject, Mutate, and compares the decision and the resulting pod with
// testdata/<case>.golden.yaml. For every injected case it also checks that
// the input was not changed and that the golden pod, read back, is left as
// it is by both Decide (AlreadyInjected) and Mutate.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 16 {
		t.Fatalf("found %d golden cases in testdata, want at least 16", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			runGoldenCase(t, name, in, filepath.Join("testdata", name+".golden.yaml"))
		})
	}
	goldens, _ := filepath.Glob("testdata/*.golden.yaml")
	for _, g := range goldens {
		if _, err := os.Stat(strings.TrimSuffix(g, ".golden.yaml") + ".in.yaml"); err != nil {
			t.Errorf("%s has no input file; delete it", g)
		}
	}
}

func runGoldenCase(t *testing.T, name, inPath, goldenPath string) {
	data, err := os.ReadFile(inPath)
	if err != nil {
		t.Fatal(err)
	}
	var in goldenInput
	if err := yaml.UnmarshalStrict(data, &in); err != nil {
		t.Fatalf("%s: %v", inPath, err)
	}
	cfg := DefaultConfig()
	if in.NativeSidecars != nil {
		cfg.NativeSidecars = *in.NativeSidecars
	}
	pod := &in.Pod
	before := pod.DeepCopy()

	d := Decide(pod, in.Namespace, cfg)
	if d.Reason != in.Want {
		t.Errorf("Decide: %s (%s), want %s", d.Reason, d.Message, in.Want)
	}
	result := pod
	if d.Inject {
		if result, err = Mutate(pod, cfg); err != nil {
			t.Fatalf("Mutate: %v", err)
		}
	}
	if !reflect.DeepEqual(pod, before) {
		t.Errorf("Decide or Mutate changed their input pod")
	}
	got := renderGolden(name, d, result)
	compareGolden(t, goldenPath, got)

	if d.Reason == AlreadyInjected {
		twice, err := Mutate(pod, cfg)
		if err != nil {
			t.Fatalf("Mutate of an injected pod: %v", err)
		}
		if out := renderGolden(name, d, twice); !bytes.Equal(out, got) {
			t.Errorf("Mutate of an injected pod changed it:\n%s", golden.LineDiff(string(got), string(out)))
		}
	}
	if !d.Inject {
		return
	}
	// The golden itself, as the API server would hand it back on a second
	// admission, must be left alone.
	var again corev1.Pod
	if err := yaml.UnmarshalStrict(got, &again); err != nil {
		t.Fatalf("read the golden pod back: %v", err)
	}
	if d2 := Decide(&again, in.Namespace, cfg); d2.Reason != AlreadyInjected || d2.Inject {
		t.Errorf("Decide of the injected pod: %+v, want AlreadyInjected", d2)
	}
	twice, err := Mutate(&again, cfg)
	if err != nil {
		t.Fatalf("Mutate of the injected pod: %v", err)
	}
	if out := renderGolden(name, d, twice); !bytes.Equal(out, got) {
		t.Errorf("Mutate of the injected pod changed it:\n%s", golden.LineDiff(string(got), string(out)))
	}
}

// renderGolden is the golden file's text: the decision as comments, then
// the pod the webhook lets through (the input itself when not injected).
func renderGolden(name string, d Decision, pod *corev1.Pod) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Output of testdata/%s.in.yaml; REFRESH_GOLDEN=1 go test ./internal/inject/ rewrites it.\n", name)
	verdict := "inject"
	switch {
	case d.Refused():
		verdict = "refuse the pod"
	case !d.Inject:
		verdict = "admit unchanged"
	}
	msg := strings.ReplaceAll(d.Message, "\n", "\n#   ")
	fmt.Fprintf(&b, "# Decide: %s (%s): %s\n", d.Reason, verdict, msg)
	out, err := yaml.Marshal(pod)
	if err != nil {
		panic(err)
	}
	b.Write(out)
	return b.Bytes()
}

// compareGolden fails the test when got differs from the golden file at
// path, showing the difference, or rewrites the file under REFRESH_GOLDEN.
func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if refreshGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (REFRESH_GOLDEN=1 go test ./internal/inject/ writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale (REFRESH_GOLDEN=1 go test ./internal/inject/ rewrites it); - golden, + got:\n%s",
			path, golden.LineDiff(string(want), string(got)))
	}
}

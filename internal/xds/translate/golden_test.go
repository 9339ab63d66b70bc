package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/skeinmesh/skein/internal/golden"
)

// refreshGolden rewrites the golden files instead of comparing with them.
var refreshGolden = os.Getenv("REFRESH_GOLDEN") != ""

// TestGolden translates every scenario for its proxy and compares the
// resources with testdata/<scenario>.golden.yaml. Every resource must also
// pass its protoc-gen-validate rules and the set must be consistent the way
// a snapshot must be (every RDS name, cluster and EDS cluster referenced
// exists).
func TestGolden(t *testing.T) {
	if len(scenarios) < 15 {
		t.Fatalf("%d scenarios, want at least 15", len(scenarios))
	}
	seen := map[string]bool{}
	for _, sc := range scenarios {
		if seen[sc.name] {
			t.Fatalf("two scenarios named %s", sc.name)
		}
		seen[sc.name] = true
		t.Run(sc.name, func(t *testing.T) {
			r := ForProxy(sc.model, sc.proxy)
			if err := validate(r); err != nil {
				t.Errorf("invalid resources: %v", err)
			}
			if err := consistent(r); err != nil {
				t.Errorf("inconsistent resources: %v", err)
			}
			compareGolden(t, filepath.Join("testdata", sc.name+".golden.yaml"), renderGolden(sc, r))
			if sc.check != nil {
				sc.check(t, r)
			}
		})
	}
	goldens, _ := filepath.Glob("testdata/*.golden.yaml")
	for _, g := range goldens {
		if !seen[strings.TrimSuffix(filepath.Base(g), ".golden.yaml")] {
			t.Errorf("%s has no scenario; delete it", g)
		}
	}
}

// TestDeterministic translates every scenario twice and requires
// byte-identical resources.
func TestDeterministic(t *testing.T) {
	for _, sc := range scenarios {
		a, b := wireBytes(t, ForProxy(sc.model, sc.proxy)), wireBytes(t, ForProxy(sc.model, sc.proxy))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two translations of the same model differ", sc.name)
		}
	}
}

// TestStaleGoldenFails pins that a golden file that no longer matches the
// translation is reported with a diff, not passed.
func TestStaleGoldenFails(t *testing.T) {
	sc := scenarios[0]
	got := renderGolden(sc, ForProxy(sc.model, sc.proxy))
	stale := bytes.Replace(got, []byte("connectTimeout: 10s"), []byte("connectTimeout: 5s"), 1)
	if bytes.Equal(stale, got) {
		t.Fatal("the scenario has no cluster to make stale")
	}
	path := filepath.Join(t.TempDir(), "stale.golden.yaml")
	if err := os.WriteFile(path, stale, 0o644); err != nil {
		t.Fatal(err)
	}
	diff, err := goldenDiff(path, got)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(diff, "- ") || !strings.Contains(diff, "connectTimeout: 5s") {
		t.Errorf("a stale golden gave no diff: %q", diff)
	}
}

// wireBytes is every resource's deterministic wire form, in order.
func wireBytes(t *testing.T, r *Resources) []byte {
	t.Helper()
	out, err := wire(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wire is wireBytes for goroutines other than the test's.
func wire(r *Resources) ([]byte, error) {
	var out []byte
	opt := proto.MarshalOptions{Deterministic: true}
	for _, m := range allMessages(r) {
		b, err := opt.Marshal(m)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	for _, s := range r.Sources {
		out = fmt.Append(out, s)
	}
	return out, nil
}

// allMessages is every resource of r, kind by kind.
func allMessages(r *Resources) []proto.Message {
	var out []proto.Message
	for _, m := range r.Listeners {
		out = append(out, m)
	}
	for _, m := range r.Routes {
		out = append(out, m)
	}
	for _, m := range r.Clusters {
		out = append(out, m)
	}
	for _, m := range r.Endpoints {
		out = append(out, m)
	}
	return out
}

// renderGolden is the golden file's text: the scenario's description as a
// comment, then sources and each kind of resource, protojson turned into
// YAML, in the Resources' order (sorted by name).
func renderGolden(sc scenario, r *Resources) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Scenario %s; REFRESH_GOLDEN=1 go test ./internal/xds/translate/ rewrites it.\n", sc.name)
	for _, line := range strings.Split(strings.TrimSpace(sc.about), "\n") {
		fmt.Fprintf(&b, "# %s\n", strings.TrimSpace(line))
	}
	fmt.Fprintf(&b, "# Proxy: %+v\n", sc.proxy)
	doc := struct {
		Sources   any               `json:"sources"`
		Listeners []json.RawMessage `json:"listeners"`
		Routes    []json.RawMessage `json:"routes"`
		Clusters  []json.RawMessage `json:"clusters"`
		Endpoints []json.RawMessage `json:"endpoints"`
	}{Sources: r.Sources}
	for _, m := range r.Listeners {
		doc.Listeners = append(doc.Listeners, protoJSON(m))
	}
	for _, m := range r.Routes {
		doc.Routes = append(doc.Routes, protoJSON(m))
	}
	for _, m := range r.Clusters {
		doc.Clusters = append(doc.Clusters, protoJSON(m))
	}
	for _, m := range r.Endpoints {
		doc.Endpoints = append(doc.Endpoints, protoJSON(m))
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		panic(err)
	}
	b.Write(out)
	return b.Bytes()
}

func protoJSON(m proto.Message) json.RawMessage {
	b, err := protojson.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
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
	diff, err := goldenDiff(path, got)
	if err != nil {
		t.Fatalf("%v (REFRESH_GOLDEN=1 go test ./internal/xds/translate/ writes it)", err)
	}
	if diff != "" {
		t.Errorf("%s is stale (REFRESH_GOLDEN=1 go test ./internal/xds/translate/ rewrites it); - golden, + got:\n%s", path, diff)
	}
}

// goldenDiff is the line diff between the golden file at path and got,
// empty when they are equal.
func goldenDiff(path string, got []byte) (string, error) {
	want, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if bytes.Equal(got, want) {
		return "", nil
	}
	return golden.LineDiff(string(want), string(got)), nil
}

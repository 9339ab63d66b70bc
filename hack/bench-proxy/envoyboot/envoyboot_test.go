package envoyboot

import (
	"os"
	"strings"
	"testing"
)

var ports = map[string]string{"SKEIN_PORT": "18081", "BACKEND_PORT": "18080"}

func template(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../skein-bootstrap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The bench's bootstrap is one a real Envoy would accept: a broken template
// would otherwise show up only as skein-proxy refusing to start mid-benchmark.
func TestTemplateIsAValidBootstrap(t *testing.T) {
	out, err := Render(template(t), ports, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	ls := b.GetStaticResources().GetListeners()
	if len(ls) != 1 || ls[0].GetAddress().GetSocketAddress().GetPortValue() != 18081 {
		t.Errorf("listeners = %v, want one on port 18081", ls)
	}
	cs := b.GetStaticResources().GetClusters()
	if len(cs) != 1 {
		t.Fatalf("clusters = %d, want 1", len(cs))
	}
	ep := cs[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if ep.GetAddress() != "127.0.0.1" || ep.GetPortValue() != 18080 {
		t.Errorf("backend endpoint = %v, want 127.0.0.1:18080", ep)
	}
}

func TestThousandExtraClusters(t *testing.T) {
	out, err := Render(template(t), ports, 1000)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	cs := b.GetStaticResources().GetClusters()
	if len(cs) != 1001 {
		t.Fatalf("clusters = %d, want 1001", len(cs))
	}
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.GetName()] {
			t.Errorf("cluster %q twice", c.GetName())
		}
		seen[c.GetName()] = true
		if c.GetLoadAssignment().GetClusterName() != c.GetName() {
			t.Errorf("cluster %q: load_assignment.cluster_name %q", c.GetName(), c.GetLoadAssignment().GetClusterName())
		}
	}
	if got := len(b.GetStaticResources().GetListeners()); got != 1 {
		t.Errorf("listeners = %d, want 1", got)
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string // what is wrong
		text string // the template
		want string // part of the error
	}{
		{"placeholder without a value", "node: {id: ${NODE}}", "NODE"},
		{"unknown field", "static_resourcez: {}", "static_resourcez"},
		{"invalid value", "static_resources: {clusters: [{name: ''}]}", "Name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(tc.text, nil, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

package proxy

import (
	"regexp"
	"strings"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/skeinmesh/skein/sidecar/stats"
	"github.com/skeinmesh/skein/sidecar/xdsclient"
)

// dumpOf parses the proxy's config dump.
func dumpOf(t *testing.T, p *Proxy) (*adminv3.ClustersConfigDump, *adminv3.EndpointsConfigDump, *adminv3.ListenersConfigDump, *adminv3.RoutesConfigDump) {
	t.Helper()
	b, err := p.ConfigDump()
	if err != nil {
		t.Fatal(err)
	}
	var d adminv3.ConfigDump
	if err := protojson.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	cd, ed, ld, rd := &adminv3.ClustersConfigDump{}, &adminv3.EndpointsConfigDump{}, &adminv3.ListenersConfigDump{}, &adminv3.RoutesConfigDump{}
	for _, a := range d.GetConfigs() {
		switch {
		case a.MessageIs(cd):
			err = a.UnmarshalTo(cd)
		case a.MessageIs(ed):
			err = a.UnmarshalTo(ed)
		case a.MessageIs(ld):
			err = a.UnmarshalTo(ld)
		case a.MessageIs(rd):
			err = a.UnmarshalTo(rd)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return cd, ed, ld, rd
}

// configVersions are the config_version_info series: version by type label.
func configVersions(t *testing.T, s *stats.Stats) map[string][]string {
	t.Helper()
	var b strings.Builder
	if err := stats.WriteText(&b, s.Gatherer(), func(series string) bool {
		return strings.HasPrefix(series, "skein_proxy_config_version_info{")
	}); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	// skein_proxy_config_version_info{type="cds",version="v2"}: 1
	re := regexp.MustCompile(`^skein_proxy_config_version_info\{type="([^"]*)",version="([^"]*)"\}: 1$`)
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			out[m[1]] = append(out[m[1]], m[2])
		}
	}
	return out
}

// checkMetric checks that config_version_info has one series per type,
// of the version want says, and none of another type.
func checkMetric(t *testing.T, st *stats.Stats, want map[string]string) {
	t.Helper()
	got := configVersions(t, st)
	if len(got) != len(want) {
		t.Errorf("config_version_info: %v, want %v", got, want)
	}
	for typ, v := range want {
		if g := got[typ]; len(g) != 1 || g[0] != v {
			t.Errorf("config_version_info{type=%q}: %v, want %s", typ, g, v)
		}
	}
}

// TestConfigVersionsInDumpAndStats: the versions the xDS client hands over
// reach the config dump (each type's version_info for CDS and LDS, each
// resource's the version it last changed in) and config_version_info; a
// version-only update moves the type's version and not the resources'; a
// refused update moves nothing.
func TestConfigVersionsInDumpAndStats(t *testing.T) {
	st := stats.New()
	p := newProxy(t, Config{ADS: true, Stats: st})
	other := edsCluster("other")
	mustV := func(typeURL, version string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("ApplyVersion %s %s: %v", typeURL, version, err)
		}
	}
	mustV(xdsclient.ClusterType, "c1", p.ApplyVersion(xdsclient.ClusterType, "c1", set(t, edsCluster("good"), other)))
	mustV(xdsclient.EndpointType, "e1", p.ApplyVersion(xdsclient.EndpointType, "e1", set(t, assignment("good", "127.0.0.1", 1000), assignment("other", "127.0.0.1", 1001))))
	mustV(xdsclient.ListenerType, "l1", p.ApplyVersion(xdsclient.ListenerType, "l1", set(t, tcpListener(t, "tcp", freePort(t), "good"))))
	mustV(xdsclient.RouteType, "r1", p.ApplyVersion(xdsclient.RouteType, "r1", set(t, routeConfig("r", "good", false))))

	cd, ed, ld, rd := dumpOf(t, p)
	if cd.GetVersionInfo() != "c1" || ld.GetVersionInfo() != "l1" {
		t.Errorf("dump version_info: clusters %q listeners %q, want c1 and l1", cd.GetVersionInfo(), ld.GetVersionInfo())
	}
	for _, c := range cd.GetDynamicActiveClusters() {
		if c.GetVersionInfo() != "c1" {
			t.Errorf("cluster version_info %q, want c1", c.GetVersionInfo())
		}
	}
	if e := ed.GetDynamicEndpointConfigs(); len(e) != 2 || e[0].GetVersionInfo() != "e1" || e[1].GetVersionInfo() != "e1" {
		t.Errorf("endpoint configs %v, want two of version e1", e)
	}
	if l := ld.GetDynamicListeners(); len(l) != 1 || l[0].GetActiveState().GetVersionInfo() != "l1" {
		t.Errorf("listeners %v, want one of version l1", l)
	}
	if r := rd.GetDynamicRouteConfigs(); len(r) != 1 || r[0].GetVersionInfo() != "r1" {
		t.Errorf("route configs %v, want one of version r1", r)
	}
	want := map[string]string{"cds": "c1", "eds": "e1", "lds": "l1", "rds": "r1"}
	checkMetric(t, st, want)

	// c2 changes cluster "other" only.
	cd0 := cd
	time.Sleep(2 * time.Millisecond) // last_updated must tell the two apart
	other2 := edsCluster("other")
	other2.ConnectTimeout = durationpb.New(3 * time.Second)
	mustV(xdsclient.ClusterType, "c2", p.ApplyVersion(xdsclient.ClusterType, "c2", set(t, edsCluster("good"), other2)))
	cd, _, _, _ = dumpOf(t, p)
	got := map[string]*adminv3.ClustersConfigDump_DynamicCluster{}
	for _, c := range cd.GetDynamicActiveClusters() {
		pb := &clusterv3.Cluster{}
		if err := c.GetCluster().UnmarshalTo(pb); err != nil {
			t.Fatal(err)
		}
		got[pb.GetName()] = c
	}
	if cd.GetVersionInfo() != "c2" || got["good"].GetVersionInfo() != "c1" || got["other"].GetVersionInfo() != "c2" {
		t.Errorf("after c2: version_info %q, good %q, other %q; want c2, c1 (unchanged), c2",
			cd.GetVersionInfo(), got["good"].GetVersionInfo(), got["other"].GetVersionInfo())
	}
	if !got["good"].GetLastUpdated().AsTime().Equal(cd0.GetDynamicActiveClusters()[0].GetLastUpdated().AsTime()) {
		t.Errorf("unchanged cluster good's last_updated moved")
	}

	// The same clusters again as c3: only the type's version moves.
	p.SetVersion(xdsclient.ClusterType, "c3")
	cd, _, _, _ = dumpOf(t, p)
	if cd.GetVersionInfo() != "c3" {
		t.Errorf("after SetVersion c3: version_info %q", cd.GetVersionInfo())
	}
	for _, c := range cd.GetDynamicActiveClusters() {
		if v := c.GetVersionInfo(); v != "c1" && v != "c2" {
			t.Errorf("SetVersion changed a cluster's version_info to %q", v)
		}
	}

	// A refused c4 changes nothing.
	bad := edsCluster("bad")
	bad.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	if err := p.ApplyVersion(xdsclient.ClusterType, "c4", set(t, edsCluster("good"), bad)); err == nil {
		t.Fatal("c4 applied")
	}
	if cd, _, _, _ = dumpOf(t, p); cd.GetVersionInfo() != "c3" {
		t.Errorf("after the refused c4: version_info %q, want c3", cd.GetVersionInfo())
	}
	want["cds"] = "c3"
	checkMetric(t, st, want)
}

package proxy

import (
	"strings"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skeinmesh/skein/sidecar/xdsclient"
)

// TestConfigDumpIsEnvoys: the dump, written without admin.v3's messages
// (see ConfigDump), reads back with protojson as exactly the
// admin.v3.ConfigDump that those messages make of the same config: static
// and dynamic resources, versions and times; and a resource's text with
// characters encoding/json would escape for HTML comes out as written.
func TestConfigDumpIsEnvoys(t *testing.T) {
	static := &clusterv3.Cluster{
		Name:                 "static<&>",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
	}
	staticL := tcpListener(t, "static-listener", freePort(t), "static<&>")
	p := newProxy(t, Config{ADS: true, Clusters: []*clusterv3.Cluster{static}, Listeners: []*listenerv3.Listener{staticL}})
	boot := &bootstrapv3.Bootstrap{Node: &corev3.Node{Id: "sidecar~10.0.0.1~a.default~default.svc.cluster.local"}}
	p.SetBootstrap(boot)
	if err := p.ApplyVersion(xdsclient.ClusterType, "c1", set(t, edsCluster("good"))); err != nil {
		t.Fatal(err)
	}
	if err := p.ApplyVersion(xdsclient.EndpointType, "e1", set(t, assignment("good", "127.0.0.1", 1000))); err != nil {
		t.Fatal(err)
	}
	if err := p.ApplyVersion(xdsclient.ListenerType, "l1", set(t, tcpListener(t, "good", freePort(t), "good"))); err != nil {
		t.Fatal(err)
	}
	if err := p.ApplyVersion(xdsclient.RouteType, "r1", set(t, routeConfig("r", "good", true))); err != nil {
		t.Fatal(err)
	}

	b, err := p.ConfigDump()
	if err != nil {
		t.Fatal(err)
	}
	var got adminv3.ConfigDump
	if err := protojson.Unmarshal(b, &got); err != nil {
		t.Fatalf("not an admin.v3.ConfigDump: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), `"static<&>"`) {
		t.Errorf("the static cluster's name is not in the dump as written:\n%s", b)
	}
	if want := envoyDump(t, p); !proto.Equal(want, &got) {
		t.Errorf("dump read back:\n%s\nadmin.v3's:\n%s", protojson.Format(&got), protojson.Format(want))
	}
}

// envoyDump is the dump as admin.v3's messages make it: what ConfigDump
// wrote before it did without them.
func envoyDump(t *testing.T, p *Proxy) *adminv3.ConfigDump {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	anyOrFail := func(r *resource) *anypb.Any {
		a, err := anyOf(r)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ts := func(r *resource) *timestamppb.Timestamp { return timestamppb.New(r.updated) }
	var out []proto.Message
	out = append(out, &adminv3.BootstrapConfigDump{Bootstrap: p.bootstrap})
	cd := &adminv3.ClustersConfigDump{VersionInfo: p.versions[xdsclient.ClusterType]}
	each(p.static.clusters, func(r *resource) {
		cd.StaticClusters = append(cd.StaticClusters, &adminv3.ClustersConfigDump_StaticCluster{Cluster: anyOrFail(r), LastUpdated: ts(r)})
	})
	each(p.dynamic.clusters, func(r *resource) {
		cd.DynamicActiveClusters = append(cd.DynamicActiveClusters, &adminv3.ClustersConfigDump_DynamicCluster{VersionInfo: r.version, Cluster: anyOrFail(r), LastUpdated: ts(r)})
	})
	ed := &adminv3.EndpointsConfigDump{}
	each(p.dynamic.endpoints, func(r *resource) {
		ed.DynamicEndpointConfigs = append(ed.DynamicEndpointConfigs, &adminv3.EndpointsConfigDump_DynamicEndpointConfig{VersionInfo: r.version, EndpointConfig: anyOrFail(r), LastUpdated: ts(r)})
	})
	ld := &adminv3.ListenersConfigDump{VersionInfo: p.versions[xdsclient.ListenerType]}
	each(p.static.listeners, func(r *resource) {
		ld.StaticListeners = append(ld.StaticListeners, &adminv3.ListenersConfigDump_StaticListener{Listener: anyOrFail(r), LastUpdated: ts(r)})
	})
	each(p.dynamic.listeners, func(r *resource) {
		ld.DynamicListeners = append(ld.DynamicListeners, &adminv3.ListenersConfigDump_DynamicListener{
			Name:        r.msg.(*listenerv3.Listener).GetName(),
			ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{VersionInfo: r.version, Listener: anyOrFail(r), LastUpdated: ts(r)},
		})
	})
	rd := &adminv3.RoutesConfigDump{}
	each(p.dynamic.routes, func(r *resource) {
		rd.DynamicRouteConfigs = append(rd.DynamicRouteConfigs, &adminv3.RoutesConfigDump_DynamicRouteConfig{VersionInfo: r.version, RouteConfig: anyOrFail(r), LastUpdated: ts(r)})
	})
	out = append(out, cd, ed, ld, rd)
	d := &adminv3.ConfigDump{}
	for _, m := range out {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		d.Configs = append(d.Configs, a)
	}
	return d
}

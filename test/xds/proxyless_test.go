// Package xds_test checks Skein's xDS output with an independent, strict
// consumer: grpc-go's own xds resolver ("proxyless gRPC") dials
// xds:///<host>:<port> through Skein's xDS server, which serves what the
// translator generates for it, and calls land on real gRPC backends, where
// they are counted.
package xds_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/xds"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
	"github.com/skeinmesh/skein/internal/mesh"
	"github.com/skeinmesh/skein/internal/meshconfig"
	"github.com/skeinmesh/skein/internal/testenv"
	"github.com/skeinmesh/skein/internal/xds/server"
)

const (
	// namespace, service and port of the meshed gRPC service the client calls.
	namespace   = "shop"
	serviceName = "greeter"
	servicePort = 50051
	host        = serviceName + "." + namespace + ".svc.cluster.local"
	// target is what the application dials.
	target = "xds:///" + host + ":50051"
	// canaryHeader routes a call to v2 when it is "yes".
	canaryHeader = "x-canary"
	// policyName is the TrafficPolicy with the routes.
	policyName = serviceName + "-routes"
)

// client is the proxyless application's identity: no pod of its own in the
// model, a namespace that decides what it may see.
var client = mesh.Proxy{
	ID:        "proxyless~127.0.0.1~client.shop~shop.svc.cluster.local",
	Namespace: namespace,
}

// TestProxylessGRPCFollowsSkeinRoutes: an application using grpc-go's xds
// resolver, configured by Skein, sends calls with x-canary: yes to subset v2
// only, splits the others 80/20 between v1 and v2 and spreads v1's share over
// both its pods; when the policy changes to 0/100, later calls follow it.
// grpc-go ACKs every resource; a NACK fails the test with grpc-go's reason.
func TestProxylessGRPCFollowsSkeinRoutes(t *testing.T) {
	backends := []*backend{
		startBackend(t, "greeter-v1-a", "v1"),
		startBackend(t, "greeter-v1-b", "v1"),
		startBackend(t, "greeter-v2-a", "v2"),
	}
	cp := startControlPlane(t, meshModel(backends, 80, 20, 1))

	conn := dialXDS(t, cp.addr, client.ID)
	tc := testpb.NewTestServiceClient(conn)

	// The client connects on its first call, which waits until the
	// resolver has LDS, RDS, CDS and EDS.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.WaitForReady(true))
		first <- err
	}()
	cp.waitSynced(t, policyName, 1)
	if err := <-first; err != nil {
		t.Fatalf("first call through %s: %v", target, err)
	}
	count(backends)

	t.Run("weighted split 80/20", func(t *testing.T) {
		const calls = 1000
		call(t, tc, calls, nil)
		got := count(backends)
		if got.total != calls {
			t.Fatalf("backends served %d calls, want %d: %s", got.total, calls, got)
		}
		// v2's share has a standard deviation of sqrt(0.2*0.8/1000) = 1.3%;
		// 5% is almost four of them.
		if share := got.share("v2"); math.Abs(share-0.20) > 0.05 {
			t.Errorf("v2 served %.1f%% of calls, want 20%% ± 5%%: %s", 100*share, got)
		}
		for _, name := range []string{"greeter-v1-a", "greeter-v1-b"} {
			if got.byBackend[name] == 0 {
				t.Errorf("%s served no calls; v1's share should use both its pods: %s", name, got)
			}
		}
		t.Logf("%d calls: %s", calls, got)
	})

	t.Run("header match sends x-canary: yes to v2", func(t *testing.T) {
		const calls = 300
		call(t, tc, calls, metadata.Pairs(canaryHeader, "yes"))
		got := count(backends)
		if got.bySubset["v2"] != calls || got.total != calls {
			t.Errorf("of %d calls with %s: yes, v2 served %d, want all: %s", calls, canaryHeader, got.bySubset["v2"], got)
		}
		// Another value does not match: those calls follow the split.
		call(t, tc, calls, metadata.Pairs(canaryHeader, "no"))
		got = count(backends)
		if got.bySubset["v1"] == 0 {
			t.Errorf("of %d calls with %s: no, v1 served none; they should follow the 80/20 split: %s", calls, canaryHeader, got)
		}
	})

	t.Run("a new split is honoured", func(t *testing.T) {
		cp.push(meshModel(backends, 0, 100, 2))
		cp.waitSynced(t, policyName, 2)
		// The resolver applies an ACKed route configuration asynchronously:
		// wait for a run of calls that the old split would send to v2 with
		// probability 0.2^50, then count.
		testenv.Eventually(t, 5*time.Second, 50*time.Millisecond, "calls follow the 0/100 split", func() error {
			count(backends)
			call(t, tc, 50, nil)
			if got := count(backends); got.bySubset["v2"] != 50 {
				return fmt.Errorf("v2 served %d of 50: %s", got.bySubset["v2"], got)
			}
			return nil
		})
		const calls = 300
		call(t, tc, calls, nil)
		if got := count(backends); got.bySubset["v2"] != calls {
			t.Errorf("after the split became 0/100, v2 served %d of %d calls: %s", got.bySubset["v2"], calls, got)
		}
	})

	if c := cp.server.Status(server.ObjectKey{Kind: "TrafficPolicy", Namespace: namespace, Name: policyName}); c.Rejected != 0 || c.Synced != 1 {
		t.Errorf("at the end, the server reports %+v, want the client synced", c)
	}
}

// meshModel is the mesh as the operator would build it: the greeter
// MeshService in shop with a GRPC port, subsets v1 and v2 by the version
// label, one endpoint per backend on 127.0.0.1 at the backend's port, and a
// TrafficPolicy routing x-canary: yes to v2 and the rest split
// weightV1/weightV2 between v1 and v2.
func meshModel(backends []*backend, weightV1, weightV2 int32, generation int64) *mesh.Model {
	var endpoints []mesh.Endpoint
	for _, b := range backends {
		endpoints = append(endpoints, mesh.Endpoint{
			IP:             "127.0.0.1",
			Ports:          map[int32]int32{servicePort: b.port},
			Ready:          true,
			Pod:            b.name,
			ServiceAccount: serviceName,
			Labels:         map[string]string{"app": serviceName, "version": b.subset},
			Node:           "node-1",
		})
	}
	one := int32(1)
	yes := "yes"
	spec := &meshv1alpha1.TrafficPolicySpec{
		TargetRef: meshv1alpha1.PolicyTargetReference{Kind: meshv1alpha1.TargetKindMeshService, Name: serviceName},
		Routes: []meshv1alpha1.Route{
			{
				Name:     "canary",
				Matches:  []meshv1alpha1.RouteMatch{{Headers: []meshv1alpha1.HeaderMatch{{Name: canaryHeader, Exact: &yes}}}},
				Backends: []meshv1alpha1.Backend{{Subset: "v2", Weight: &one}},
			},
			{
				Name: "split",
				Backends: []meshv1alpha1.Backend{
					{Subset: "v1", Weight: &weightV1},
					{Subset: "v2", Weight: &weightV2},
				},
			},
		},
	}
	return &mesh.Model{
		Settings:      meshconfig.Defaults(),
		ClusterDomain: "cluster.local",
		Services: []*mesh.Service{{
			Name:        serviceName,
			Namespace:   namespace,
			ServiceName: serviceName,
			Host:        host,
			ClusterIPs:  []string{"10.96.0.20"},
			Ports:       []mesh.Port{{Number: servicePort, Name: "grpc", Protocol: meshv1alpha1.ProtocolGRPC}},
			Subsets: []mesh.Subset{
				{Name: "v1", Labels: map[string]string{"version": "v1"}},
				{Name: "v2", Labels: map[string]string{"version": "v2"}},
			},
			// The backends serve plaintext; mTLS for proxyless clients is
			// not what this test is about.
			MTLSMode:   meshv1alpha1.MTLSDisabled,
			Endpoints:  endpoints,
			Policies:   []*mesh.TrafficPolicy{{Name: policyName, Namespace: namespace, Generation: generation, Spec: spec}},
			Generation: 1,
		}},
	}
}

// dialXDS connects to target with grpc-go's xds resolver, bootstrapped to
// use the ADS server at addr as node.
func dialXDS(t *testing.T, addr, node string) *grpc.ClientConn {
	t.Helper()
	bootstrap := fmt.Sprintf(`{
		"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": %q}
	}`, addr, node)
	resolver, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatalf("xds resolver: %v", err)
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// call makes n unary calls one after another, with md as metadata when set.
func call(t *testing.T, tc testpb.TestServiceClient, n int, md metadata.MD) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if md != nil {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	for i := range n {
		if _, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
			t.Fatalf("call %d of %d: %v", i+1, n, err)
		}
	}
}

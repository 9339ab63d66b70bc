package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// helperEnv makes the test binary, re-executed inside the test's network
// namespace, the capture test's helper (xDS server, backends, load) instead
// of running tests: a process started inside a namespace is wholly in it.
const helperEnv = "SKEIN_PROXY_TEST_HELPER"

// The namespace of TestCaptureHandover: everything on its loopback.
const (
	captureUID  = 7117         // the proxy's UID, which the capture rule exempts
	serviceVIP  = "10.88.1.1"  // a "ClusterIP": nothing listens there
	backendIP   = "10.88.0.10" // its endpoint, port 8001
	elsewhereIP = "10.88.1.3"  // a destination with no chain: passthrough, port 80
	helperXDS   = "127.0.0.1:15012"
)

// TestCaptureHandover runs the injected sidecar as it runs in a pod: in a
// network namespace whose nat rules send every TCP connection to
// 10.88.1.0/24 (but the proxy's own) to 15001, against a go-control-plane
// server that sends the control plane's virtualOutbound (use_original_dst,
// a chain for the service's VIP and port, passthrough by default). Before
// the config the capture fallback passes traffic through and the proxy is
// not ready; the config then takes 15001 over while connections keep
// arriving, none of them failing; afterwards the VIP reaches its endpoint
// and other destinations still pass through.
func TestCaptureHandover(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and iptables")
	}
	ns := fmt.Sprintf("skeinproxy-%d", os.Getpid())
	nsRun := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
		return string(out)
	}
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	nsRun("ip", "link", "set", "lo", "up")
	nsRun("ip", "addr", "add", backendIP+"/32", "dev", "lo")
	nsRun("ip", "addr", "add", elsewhereIP+"/24", "dev", "lo") // also routes the VIP
	nsRun("iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "10.88.1.0/24",
		"-m", "owner", "!", "--uid-owner", fmt.Sprint(captureUID), "-j", "REDIRECT", "--to-ports", "15001")

	// The helper: xDS server, backends and, on request, a load loop.
	helper := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=capture")
	toHelper, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	fromHelper, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	lines := bufio.NewScanner(fromHelper)
	expect := func(prefix string) string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("the helper ended before %q", prefix)
		}
		if l := lines.Text(); strings.HasPrefix(l, prefix) {
			return l
		} else {
			t.Fatalf("the helper said %q, want %q", l, prefix)
		}
		return ""
	}
	expect("ready")

	// The proxy, as the injector runs it, as UID 7117.
	dir, err := os.MkdirTemp("", "skein-proxy-capture") // t.TempDir's parent is closed to UID 7117
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(testToken), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "skein-proxy")
	if out, err := exec.Command("cp", binary, bin).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	log := &syncBuffer{}
	proxy := exec.Command("ip", "netns", "exec", ns, "setpriv", fmt.Sprintf("--reuid=%d", captureUID), fmt.Sprintf("--regid=%d", captureUID),
		"--clear-groups", bin, "--xds-token-file", token, "--drain-timeout", "1s")
	proxy.Env = append(os.Environ(), "POD_NAME="+podName, "POD_NAMESPACE="+podNS, "POD_IP=127.0.0.1", "SKEIN_XDS_ADDRESS="+helperXDS)
	proxy.Stdout, proxy.Stderr = log, log
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = proxy.Process.Kill()
		_ = proxy.Wait()
		if t.Failed() {
			t.Logf("skein-proxy log:\n%s", log.String())
		}
	})
	curl := func(url string) (string, error) {
		out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "2", "-o", "-", "-w", " %{http_code}", url).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	eventually(t, 10*time.Second, func() string {
		if out, err := curl("http://" + elsewhereIP + "/"); err != nil || out != "elsewhere 200" {
			return fmt.Sprintf("through the capture fallback: %v %s", err, out)
		}
		return ""
	})
	if out, _ := curl("http://127.0.0.1:15020/healthz/ready"); !strings.HasSuffix(out, "503") {
		t.Errorf("readiness before any config: %s, want 503", out)
	}

	fmt.Fprintln(toHelper, "load")
	expect("loading")
	time.Sleep(300 * time.Millisecond)
	fmt.Fprintln(toHelper, "publish")
	expect("published")
	eventually(t, 10*time.Second, func() string {
		if out, err := curl("http://" + serviceVIP + "/"); err != nil || out != "a 200" {
			return fmt.Sprintf("the service VIP: %v %s", err, out)
		}
		if out, _ := curl("http://127.0.0.1:15020/healthz/ready"); !strings.HasSuffix(out, "200") {
			return "readiness with the config: " + out
		}
		return ""
	})
	time.Sleep(300 * time.Millisecond)
	fmt.Fprintln(toHelper, "stop")
	result := expect("ok=")
	var ok, failed int
	var first string
	fmt.Sscanf(result, "ok=%d failed=%d", &ok, &failed)
	if i := strings.Index(result, "first="); i >= 0 {
		first = result[i:]
	}
	t.Logf("through the handover: %s", result)
	if failed != 0 || ok < 20 {
		t.Errorf("connections to a passthrough destination across the handover: %d ok, %d failed (%s)", ok, failed, first)
	}
	if !strings.Contains(log.String(), "replace the capture fallback") {
		t.Error("the proxy did not log the handover")
	}
	if out, err := curl("http://" + elsewhereIP + "/"); err != nil || out != "elsewhere 200" {
		t.Errorf("passthrough with the config: %v %s", err, out)
	}
}

// runHelper runs the helper role the environment asks for, if any, and
// reports whether it did.
func runHelper() bool {
	switch os.Getenv(helperEnv) {
	case "":
		return false
	case "capture":
		captureHelper()
		return true
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", os.Getenv(helperEnv))
		os.Exit(2)
		return true
	}
}

// captureHelper serves the backends and the xDS server inside the
// namespace, then follows the test's commands on stdin: "load" starts
// connections through the capture (new connection per request) to the
// passthrough destination, "publish" sets the snapshot, "stop" ends the
// load and prints its counts. It serves until stdin closes.
func captureHelper() {
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	serve := func(addr, name string) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fail(err)
		}
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, name) }))
	}
	serve(backendIP+":8001", "a")
	serve(elsewhereIP+":80", "elsewhere")

	cache := cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)
	ln, err := net.Listen("tcp", helperXDS)
	if err != nil {
		fail(err)
	}
	gs := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(context.Background(), cache, nil))
	go gs.Serve(ln)
	fmt.Println("ready")

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "load":
			client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						resp, err := client.Get("http://" + elsewhereIP + "/")
						if err == nil {
							b, _ := io.ReadAll(resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 || string(b) != "elsewhere" {
								err = fmt.Errorf("%d %q", resp.StatusCode, b)
							}
						}
						if err != nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err.Error())
						} else {
							ok.Add(1)
						}
					}
				}()
			}
			fmt.Println("loading")
		case "publish":
			snap, err := captureSnapshot()
			if err == nil {
				err = cache.SetSnapshot(context.Background(), nodeID, snap)
			}
			if err != nil {
				fail(err)
			}
			fmt.Println("published")
		case "stop":
			close(stop)
			wg.Wait()
			fmt.Printf("ok=%d failed=%d first=%v\n", ok.Load(), failed.Load(), firstErr.Load())
		}
	}
}

// captureSnapshot is the control plane's shape of an outbound config:
// virtualOutbound on 0.0.0.0:15001 with use_original_dst, one chain for
// the service's VIP and port to its EDS cluster, and a default chain to
// PassthroughCluster.
func captureSnapshot() (*cachev3.Snapshot, error) {
	const svc = "outbound|80||a.default.svc.cluster.local"
	tcp := func(cluster string) (*listenerv3.Filter, error) {
		a, err := anypb.New(&tcpproxyv3.TcpProxy{StatPrefix: cluster, ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster}})
		return &listenerv3.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}}, err
	}
	toSvc, err := tcp(svc)
	if err != nil {
		return nil, err
	}
	toPassthrough, err := tcp("PassthroughCluster")
	if err != nil {
		return nil, err
	}
	outbound := &listenerv3.Listener{
		Name:             "virtualOutbound",
		Address:          sockAddr("0.0.0.0", 15001),
		UseOriginalDst:   wrapperspb.Bool(true),
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
		FilterChains: []*listenerv3.FilterChain{{
			Name: "a:80",
			FilterChainMatch: &listenerv3.FilterChainMatch{
				PrefixRanges:    []*corev3.CidrRange{{AddressPrefix: serviceVIP, PrefixLen: wrapperspb.UInt32(32)}},
				DestinationPort: wrapperspb.UInt32(80),
			},
			Filters: []*listenerv3.Filter{toSvc},
		}},
		DefaultFilterChain: &listenerv3.FilterChain{Name: "PassthroughCluster", Filters: []*listenerv3.Filter{toPassthrough}},
	}
	clusters := []types.Resource{
		&clusterv3.Cluster{
			Name:                 svc,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			ConnectTimeout:       durationpb.New(time.Second),
			EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			}},
		},
		&clusterv3.Cluster{
			Name:                 "PassthroughCluster",
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
			LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
			ConnectTimeout:       durationpb.New(time.Second),
		},
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: svc, Endpoints: []*endpointv3.LocalityLbEndpoints{{
		LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
			Endpoint: &endpointv3.Endpoint{Address: sockAddr(backendIP, 8001)},
		}}},
	}}}
	return cachev3.NewSnapshot("1", map[resource.Type][]types.Resource{
		resource.ClusterType:  clusters,
		resource.EndpointType: {cla},
		resource.ListenerType: {outbound},
	})
}

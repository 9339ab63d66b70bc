package bootstrap

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
)

// fields says which populated fields of a message are supported and which
// are accepted and ignored; any other populated field is refused.
type fields struct {
	supported, ignored []string
}

// check refuses the populated fields of m that f neither supports nor
// ignores, in declaration order.
func (f fields) check(m proto.Message, path string) error {
	r := m.ProtoReflect()
	fds := r.Descriptor().Fields()
	var errs []error
	for i := range fds.Len() {
		fd := fds.Get(i)
		if !r.Has(fd) {
			continue
		}
		name := string(fd.Name())
		if contains(f.supported, name) || contains(f.ignored, name) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: not supported by skein-proxy", joinKey(path, name)))
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

var (
	bootstrapFields = fields{
		supported: []string{"node", "admin", "static_resources", "dynamic_resources"},
		// Envoy's process internals: they change no traffic.
		ignored: []string{
			"layered_runtime", "overload_manager", "watchdog", "watchdogs", "stats_config",
			"stats_flush_interval", "stats_flush_on_admin", "stats_eviction_interval", "deferred_stat_options",
			"enable_dispatcher_stats", "stats_server_version_override", "node_context_params",
			"inline_headers", "perf_tracing_file_path", "memory_allocator_manager",
			"enable_worker_cpu_affinity", "application_log_config",
		},
	}
	adminFields        = fields{supported: []string{"address"}, ignored: []string{"access_log", "access_log_path", "profile_path", "ignore_global_conn_limit"}}
	staticFields       = fields{supported: []string{"listeners", "clusters"}}
	dynamicFields      = fields{supported: []string{"lds_config", "cds_config", "ads_config"}}
	adsConfigFields    = fields{supported: []string{"api_type", "transport_api_version", "grpc_services"}, ignored: []string{"set_node_on_first_message_only", "rate_limit_settings"}}
	grpcServiceFields  = fields{supported: []string{"envoy_grpc", "initial_metadata"}, ignored: []string{"timeout"}}
	envoyGrpcFields    = fields{supported: []string{"cluster_name"}}
	configSourceFields = fields{supported: []string{"ads", "resource_api_version"}, ignored: []string{"initial_fetch_timeout"}}
	socketAddrFields   = fields{supported: []string{"address", "port_value"}}
)

// Check refuses a bootstrap outside the subset skein-proxy supports (see
// the package doc), with every problem's field path. Listeners and clusters
// are only checked for names here; their packages compile them.
func Check(b *bootstrapv3.Bootstrap) error {
	if b == nil {
		return errors.New("no bootstrap")
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(bootstrapFields.check(b, ""))
	if a := b.GetAdmin(); a != nil {
		add(checkAdmin(a))
	}
	if s := b.GetStaticResources(); s != nil {
		add(staticFields.check(s, "static_resources"))
		add(uniqueNames("static_resources.listeners", len(s.GetListeners()), func(i int) string { return s.GetListeners()[i].GetName() }))
		add(uniqueNames("static_resources.clusters", len(s.GetClusters()), func(i int) string { return s.GetClusters()[i].GetName() }))
	}
	if b.GetDynamicResources() != nil {
		if b.GetNode().GetId() == "" {
			add(errors.New("node.id: required with dynamic_resources: the control plane knows the proxy by it"))
		}
		_, err := ADS(b)
		add(err)
	}
	return errors.Join(errs...)
}

func checkAdmin(a *bootstrapv3.Admin) error {
	if err := adminFields.check(a, "admin"); err != nil {
		return err
	}
	sa := a.GetAddress().GetSocketAddress()
	if sa == nil {
		return errors.New("admin.address.socket_address: required")
	}
	if err := checkSocketAddress(sa, "admin.address.socket_address"); err != nil {
		return err
	}
	ip, err := netip.ParseAddr(sa.GetAddress())
	if sa.GetAddress() != "localhost" && (err != nil || !ip.IsLoopback()) {
		return fmt.Errorf("admin.address.socket_address.address: %q is not a loopback address; the admin interface can change the proxy's state and listens on loopback only", sa.GetAddress())
	}
	return nil
}

func checkSocketAddress(sa *corev3.SocketAddress, path string) error {
	if err := socketAddrFields.check(sa, path); err != nil {
		return err
	}
	if sa.GetAddress() == "" {
		return fmt.Errorf("%s.address: required", path)
	}
	if sa.GetPortValue() == 0 {
		return fmt.Errorf("%s.port_value: required", path)
	}
	return nil
}

func uniqueNames(path string, n int, name func(int) string) error {
	seen := make(map[string]int, n)
	for i := range n {
		nm := name(i)
		if nm == "" {
			return fmt.Errorf("%s[%d].name: required", path, i)
		}
		if j, dup := seen[nm]; dup {
			return fmt.Errorf("%s[%d].name: %q is also the name of %s[%d]", path, i, nm, path, j)
		}
		seen[nm] = i
	}
	return nil
}

// ADSTarget is where and how the proxy reaches its control plane, resolved
// from dynamic_resources.ads_config and the static cluster it names.
type ADSTarget struct {
	// ClusterName is the static cluster that ads_config names.
	ClusterName string
	// Address is that cluster's one endpoint, host:port; the host is a DNS
	// name for STRICT_DNS and LOGICAL_DNS clusters.
	Address string
	// Delta is true for api_type DELTA_GRPC, false for GRPC (state of the
	// world).
	Delta bool
	// Metadata is grpc_services[0].initial_metadata, keys in lower case; nil
	// when there is none. An "authorization" entry is a static token, which
	// a token file (see TokenFile) replaces.
	Metadata map[string][]string
	// ConnectTimeout is the cluster's connect_timeout; zero when unset
	// (Envoy's default is 5s).
	ConnectTimeout time.Duration
}

// ADS resolves the bootstrap's ADS target; nil, nil when it has no
// dynamic_resources (static resources only).
func ADS(b *bootstrapv3.Bootstrap) (*ADSTarget, error) {
	d := b.GetDynamicResources()
	if d == nil {
		return nil, nil
	}
	if err := dynamicFields.check(d, "dynamic_resources"); err != nil {
		return nil, err
	}
	for _, cs := range []struct {
		path string
		src  *corev3.ConfigSource
	}{{"dynamic_resources.lds_config", d.GetLdsConfig()}, {"dynamic_resources.cds_config", d.GetCdsConfig()}} {
		if cs.src == nil {
			return nil, fmt.Errorf("%s: required: skein-proxy takes listeners and clusters over ADS (ads: {})", cs.path)
		}
		if err := configSourceFields.check(cs.src, cs.path); err != nil {
			return nil, err
		}
		if cs.src.GetAds() == nil {
			return nil, fmt.Errorf("%s.ads: required: skein-proxy takes listeners and clusters over ADS", cs.path)
		}
		if v := cs.src.GetResourceApiVersion(); v != corev3.ApiVersion_AUTO && v != corev3.ApiVersion_V3 {
			return nil, fmt.Errorf("%s.resource_api_version: %s is not supported; use V3", cs.path, v)
		}
	}

	const p = "dynamic_resources.ads_config"
	a := d.GetAdsConfig()
	if a == nil {
		return nil, fmt.Errorf("%s: required: skein-proxy takes its config over ADS", p)
	}
	if err := adsConfigFields.check(a, p); err != nil {
		return nil, err
	}
	t := &ADSTarget{}
	switch a.GetApiType() {
	case corev3.ApiConfigSource_GRPC:
	case corev3.ApiConfigSource_DELTA_GRPC:
		t.Delta = true
	default:
		return nil, fmt.Errorf("%s.api_type: %s is not supported; use GRPC or DELTA_GRPC", p, a.GetApiType())
	}
	if v := a.GetTransportApiVersion(); v != corev3.ApiVersion_AUTO && v != corev3.ApiVersion_V3 {
		return nil, fmt.Errorf("%s.transport_api_version: %s is not supported; use V3", p, v)
	}
	if n := len(a.GetGrpcServices()); n != 1 {
		return nil, fmt.Errorf("%s.grpc_services: %d services; skein-proxy needs exactly one", p, n)
	}
	gs := a.GetGrpcServices()[0]
	gp := p + ".grpc_services[0]"
	if err := grpcServiceFields.check(gs, gp); err != nil {
		return nil, err
	}
	eg := gs.GetEnvoyGrpc()
	if eg == nil {
		return nil, fmt.Errorf("%s.envoy_grpc: required (google_grpc is not supported)", gp)
	}
	if err := envoyGrpcFields.check(eg, gp+".envoy_grpc"); err != nil {
		return nil, err
	}
	for i, h := range gs.GetInitialMetadata() {
		v := h.GetValue()
		if v == "" && len(h.GetRawValue()) > 0 {
			v = string(h.GetRawValue())
		}
		if t.Metadata == nil {
			t.Metadata = map[string][]string{}
		}
		k := strings.ToLower(h.GetKey())
		if k == "" {
			return nil, fmt.Errorf("%s.initial_metadata[%d].key: required", gp, i)
		}
		t.Metadata[k] = append(t.Metadata[k], v)
	}
	t.ClusterName = eg.GetClusterName()
	if err := resolveCluster(b, t, gp+".envoy_grpc.cluster_name"); err != nil {
		return nil, err
	}
	return t, nil
}

// resolveCluster fills t's address from the static cluster it names.
func resolveCluster(b *bootstrapv3.Bootstrap, t *ADSTarget, path string) error {
	var c *clusterv3.Cluster
	var ci int
	for i, sc := range b.GetStaticResources().GetClusters() {
		if sc.GetName() == t.ClusterName {
			c, ci = sc, i
			break
		}
	}
	if c == nil {
		return fmt.Errorf("%s: %q is not a cluster of static_resources.clusters", path, t.ClusterName)
	}
	cp := "static_resources.clusters[" + strconv.Itoa(ci) + "]"
	switch c.GetType() {
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
	default:
		return fmt.Errorf("%s.type: the ADS cluster %q must be STATIC, STRICT_DNS or LOGICAL_DNS", cp, t.ClusterName)
	}
	if c.GetClusterType() != nil {
		return fmt.Errorf("%s.cluster_type: the ADS cluster %q must be STATIC, STRICT_DNS or LOGICAL_DNS", cp, t.ClusterName)
	}
	if c.GetTransportSocket() != nil || len(c.GetTransportSocketMatches()) > 0 {
		return fmt.Errorf("%s.transport_socket: TLS to the control plane is not supported yet", cp)
	}
	var eps []*corev3.SocketAddress
	var first string
	for li, lle := range c.GetLoadAssignment().GetEndpoints() {
		for ei, le := range lle.GetLbEndpoints() {
			if first == "" {
				first = fmt.Sprintf("%s.load_assignment.endpoints[%d].lb_endpoints[%d].endpoint.address.socket_address", cp, li, ei)
			}
			eps = append(eps, le.GetEndpoint().GetAddress().GetSocketAddress())
		}
	}
	if len(eps) != 1 || eps[0] == nil {
		return fmt.Errorf("%s.load_assignment: the ADS cluster %q needs exactly one endpoint with a socket_address, has %d", cp, t.ClusterName, len(eps))
	}
	if err := checkSocketAddress(eps[0], first); err != nil {
		return err
	}
	if c.GetType() == clusterv3.Cluster_STATIC {
		if _, err := netip.ParseAddr(eps[0].GetAddress()); err != nil {
			return fmt.Errorf("%s.address: %q is not an IP address, which a STATIC cluster needs", first, eps[0].GetAddress())
		}
	}
	t.Address = net.JoinHostPort(eps[0].GetAddress(), strconv.FormatUint(uint64(eps[0].GetPortValue()), 10))
	if ct := c.GetConnectTimeout(); ct != nil {
		t.ConnectTimeout = ct.AsDuration()
	}
	return nil
}

// AdminAddress is the admin interface's host:port, "" when the bootstrap
// has no admin. Call it on a bootstrap that passed Check.
func AdminAddress(b *bootstrapv3.Bootstrap) string {
	sa := b.GetAdmin().GetAddress().GetSocketAddress()
	if sa == nil {
		return ""
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
}

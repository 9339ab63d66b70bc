package upstream

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	lbcp "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/cluster_provided/v3"
	lblr "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/least_request/v3"
	lbmaglev "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/maglev/v3"
	lbrandom "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/random/v3"
	lbring "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/ring_hash/v3"
	lbrr "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/round_robin/v3"
	rawbufv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	"golang.org/x/net/http2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skeinmesh/skein/sidecar/lb"
)

// Envoy's defaults.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultDNSRefreshRate = 5 * time.Second
	// DefaultIdleTimeout is common_http_protocol_options.idle_timeout's
	// default for upstream connections (Envoy: 1 hour).
	DefaultIdleTimeout = time.Hour
)

// clusterFields are the Cluster fields Compile reads or may safely
// ignore; any other field set is refused. Ignored ones: alt_stat_name,
// metadata, track_cluster_stats, track_timeout_budgets (stats only);
// per_connection_buffer_limit_bytes (buffer tuning); wait_for_warm_on_init
// (see Warmed); dns_jitter, respect_dns_ttl (DNS clusters refresh at
// dns_refresh_rate: net.Resolver does not report TTLs);
// ignore_health_on_host_removal, preconnect_policy (tuning).
var clusterFields = []string{
	"name", "alt_stat_name", "type", "eds_cluster_config", "connect_timeout",
	"per_connection_buffer_limit_bytes", "lb_policy", "load_assignment", "health_checks",
	"max_requests_per_connection", "circuit_breakers", "upstream_http_protocol_options",
	"common_http_protocol_options", "http_protocol_options", "http2_protocol_options",
	"typed_extension_protocol_options", "dns_refresh_rate", "dns_jitter", "dns_failure_refresh_rate",
	"respect_dns_ttl", "dns_lookup_family", "wait_for_warm_on_init", "outlier_detection",
	"cleanup_interval", "ring_hash_lb_config", "maglev_lb_config", "original_dst_lb_config",
	"least_request_lb_config", "round_robin_lb_config", "common_lb_config", "transport_socket",
	"metadata", "protocol_selection", "upstream_connection_options", "ignore_health_on_host_removal",
	"load_balancing_policy", "track_cluster_stats", "track_timeout_budgets", "preconnect_policy",
	"upstream_bind_config",
}

// Compile validates a Cluster and builds its runtime form. Errors name the
// cluster and the field path: `cluster "x": lb_policy: ...`. The Cluster is
// kept (Proto, Manager's change detection) and must not be modified
// afterwards. A DNS cluster starts resolving at once, in the background;
// Close stops it.
func Compile(pb *clusterv3.Cluster) (*Cluster, error) {
	c, err := compile(pb)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", pb.GetName(), err)
	}
	c.start()
	return c, nil
}

func compile(pb *clusterv3.Cluster) (*Cluster, error) {
	if pb.GetName() == "" {
		return nil, errors.New("name: empty")
	}
	if err := onlyFields(pb, "", clusterFields...); err != nil {
		return nil, err
	}
	c := &Cluster{
		name: pb.GetName(), src: pb, warm: make(chan struct{}),
		connectTimeout: DefaultConnectTimeout, idleTimeout: DefaultIdleTimeout,
		dnsRefresh: DefaultDNSRefreshRate, cleanup: DefaultCleanupInterval,
		policies: Policies{
			CircuitBreakers:  pb.GetCircuitBreakers(),
			OutlierDetection: pb.GetOutlierDetection(),
			HealthChecks:     pb.GetHealthChecks(),
		},
	}
	c.snap.Store(&snapshot{})
	if d := pb.GetConnectTimeout(); d != nil {
		if c.connectTimeout = d.AsDuration(); c.connectTimeout <= 0 {
			return nil, errors.New("connect_timeout: must be positive")
		}
	}
	if err := c.compileType(pb); err != nil {
		return nil, err
	}
	if err := c.compileLB(pb); err != nil {
		return nil, err
	}
	if err := c.compileProtocol(pb); err != nil {
		return nil, err
	}
	if err := c.compileTransport(pb); err != nil {
		return nil, err
	}
	if err := c.compileConnection(pb); err != nil {
		return nil, err
	}
	c.dial = c.dialer.DialContext
	c.h2 = &http2.Transport{
		AllowHTTP: true, DisableCompression: true, StrictMaxConcurrentStreams: true,
		IdleConnTimeout: c.idleTimeout,
	}
	if ka := h2Keepalive(pb); ka != nil {
		c.h2.ReadIdleTimeout = ka.GetInterval().AsDuration()
		c.h2.PingTimeout = ka.GetTimeout().AsDuration()
	}
	c.h2drain = &http2.Transport{AllowHTTP: true, DisableCompression: true, StrictMaxConcurrentStreams: true}
	return c, nil
}

// compileType reads type and the fields that go with it.
func (c *Cluster) compileType(pb *clusterv3.Cluster) error {
	if pb.GetClusterType() != nil {
		return errors.New("cluster_type: custom cluster types are not supported")
	}
	hasLA := pb.GetLoadAssignment() != nil
	switch pb.GetType() {
	case clusterv3.Cluster_EDS:
		c.typ = EDS
		c.edsName = pb.GetEdsClusterConfig().GetServiceName()
		if c.edsName == "" {
			c.edsName = c.name
		}
		if hasLA {
			return errors.New("load_assignment: not allowed on an EDS cluster (endpoints come from EDS)")
		}
	case clusterv3.Cluster_STATIC:
		c.typ = Static
	case clusterv3.Cluster_STRICT_DNS:
		c.typ = StrictDNS
	case clusterv3.Cluster_LOGICAL_DNS:
		c.typ = LogicalDNS
	case clusterv3.Cluster_ORIGINAL_DST:
		c.typ = OriginalDst
		c.orig = map[netip.AddrPort]*endpoint{}
		c.origHosts = map[*lb.Host]*endpoint{}
		if hasLA {
			return errors.New("load_assignment: not allowed on an ORIGINAL_DST cluster")
		}
		if d := pb.GetCleanupInterval(); d != nil {
			if c.cleanup = d.AsDuration(); c.cleanup <= 0 {
				return errors.New("cleanup_interval: must be positive")
			}
		}
	default:
		return fmt.Errorf("type: %s not supported", pb.GetType())
	}
	if c.typ != EDS && pb.GetEdsClusterConfig() != nil {
		return fmt.Errorf("eds_cluster_config: only for EDS clusters, not %s", c.typ)
	}
	if c.typ == Static || c.typ == StrictDNS || c.typ == LogicalDNS {
		specs, err := compileEndpoints(pb.GetLoadAssignment(), "load_assignment", c.typ != Static)
		if err != nil {
			return err
		}
		if c.typ == LogicalDNS && len(specs) != 1 {
			return fmt.Errorf("load_assignment: LOGICAL_DNS needs exactly one endpoint, got %d", len(specs))
		}
		c.static = specs
	}
	if c.typ == StrictDNS || c.typ == LogicalDNS {
		if err := c.compileDNS(pb); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) compileDNS(pb *clusterv3.Cluster) error {
	if d := pb.GetDnsRefreshRate(); d != nil {
		if c.dnsRefresh = d.AsDuration(); c.dnsRefresh < time.Millisecond {
			return errors.New("dns_refresh_rate: must be at least 1ms")
		}
	}
	c.dnsFailure = c.dnsRefresh
	if r := pb.GetDnsFailureRefreshRate(); r != nil {
		if err := onlyFields(r, "dns_failure_refresh_rate", "base_interval", "max_interval"); err != nil {
			return err
		}
		if d := r.GetBaseInterval().AsDuration(); d > 0 {
			c.dnsFailure = d
		}
	}
	c.dnsFamily = pb.GetDnsLookupFamily()
	switch c.dnsFamily {
	case clusterv3.Cluster_V4_ONLY:
		c.dnsNetwork = "ip4"
	case clusterv3.Cluster_V6_ONLY:
		c.dnsNetwork = "ip6"
	default:
		c.dnsNetwork = "ip"
	}
	c.resolver = net.DefaultResolver
	return nil
}

// compileLB reads lb_policy, load_balancing_policy and the per-policy configs.
func (c *Cluster) compileLB(pb *clusterv3.Cluster) error {
	if cfg := pb.GetCommonLbConfig(); cfg != nil {
		if err := onlyFields(cfg, "common_lb_config", "update_merge_window"); err != nil {
			return err
		}
	}
	if p := pb.GetLoadBalancingPolicy(); p != nil {
		provided, err := c.compileLBPolicy(p)
		if err != nil {
			return err
		}
		if c.typ == OriginalDst && !provided {
			return fmt.Errorf("load_balancing_policy: ORIGINAL_DST needs ClusterProvided, not %s", c.policy)
		}
	} else {
		switch pb.GetLbPolicy() {
		case clusterv3.Cluster_ROUND_ROBIN:
			c.policy = lb.RoundRobin
		case clusterv3.Cluster_LEAST_REQUEST:
			c.policy = lb.LeastRequest
		case clusterv3.Cluster_RANDOM:
			c.policy = lb.Random
		case clusterv3.Cluster_RING_HASH:
			c.policy = lb.RingHash
		case clusterv3.Cluster_MAGLEV:
			c.policy = lb.Maglev
		case clusterv3.Cluster_CLUSTER_PROVIDED:
			if c.typ != OriginalDst {
				return fmt.Errorf("lb_policy: CLUSTER_PROVIDED is only for ORIGINAL_DST clusters, not %s", c.typ)
			}
		default:
			return fmt.Errorf("lb_policy: %s not supported", pb.GetLbPolicy())
		}
		if c.typ == OriginalDst && pb.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED {
			return fmt.Errorf("lb_policy: ORIGINAL_DST needs CLUSTER_PROVIDED, not %s", pb.GetLbPolicy())
		}
	}
	if r := pb.GetRingHashLbConfig(); r != nil {
		if r.GetHashFunction() != clusterv3.Cluster_RingHashLbConfig_XX_HASH {
			return fmt.Errorf("ring_hash_lb_config.hash_function: %s not supported (XX_HASH only)", r.GetHashFunction())
		}
		c.lbOpts.MinRingSize = r.GetMinimumRingSize().GetValue()
		c.lbOpts.MaxRingSize = r.GetMaximumRingSize().GetValue()
	}
	if m := pb.GetMaglevLbConfig(); m != nil {
		c.lbOpts.TableSize = m.GetTableSize().GetValue()
	}
	if l := pb.GetLeastRequestLbConfig(); l != nil {
		if err := onlyFields(l, "least_request_lb_config", "choice_count", "active_request_bias"); err != nil {
			return err
		}
		if b := l.GetActiveRequestBias(); b != nil && b.GetDefaultValue() != 1 {
			return fmt.Errorf("least_request_lb_config.active_request_bias: %v not supported (1.0 only)", b.GetDefaultValue())
		}
		c.lbOpts.ChoiceCount = l.GetChoiceCount().GetValue()
	}
	if r := pb.GetRoundRobinLbConfig(); r != nil {
		if err := onlyFields(r, "round_robin_lb_config"); err != nil {
			return err
		}
	}
	if o := pb.GetOriginalDstLbConfig(); o != nil {
		if err := onlyFields(o, "original_dst_lb_config", "upstream_port_override"); err != nil {
			return err
		}
		if p := o.GetUpstreamPortOverride(); p != nil {
			if p.GetValue() == 0 || p.GetValue() > 65535 {
				return fmt.Errorf("original_dst_lb_config.upstream_port_override: %d is not a port", p.GetValue())
			}
			c.portOverride = uint16(p.GetValue())
		}
	}
	if _, err := lb.New(c.policy, nil, c.lbOpts); err != nil {
		return fmt.Errorf("lb_policy %s: %w", c.policy, err)
	}
	return nil
}

// compileLBPolicy picks the first policy of load_balancing_policy this
// proxy implements, as Envoy and grpc-go do; a supported policy with a
// config it cannot honour is an error, not skipped.
func (c *Cluster) compileLBPolicy(p *clusterv3.LoadBalancingPolicy) (clusterProvided bool, err error) {
	var names []string
	for i, pol := range p.GetPolicies() {
		path := fmt.Sprintf("load_balancing_policy.policies[%d].typed_extension_config.typed_config", i)
		tc := pol.GetTypedExtensionConfig().GetTypedConfig()
		if tc == nil {
			return false, fmt.Errorf("%s: missing", path)
		}
		names = append(names, pol.GetTypedExtensionConfig().GetName())
		msg, err := anypb.UnmarshalNew(tc, proto.UnmarshalOptions{})
		if err != nil {
			continue // a policy this binary does not even know
		}
		switch m := msg.(type) {
		case *lbrr.RoundRobin:
			c.policy = lb.RoundRobin
			return false, onlyFields(m, path)
		case *lbrandom.Random:
			c.policy = lb.Random
			return false, onlyFields(m, path)
		case *lblr.LeastRequest:
			c.policy = lb.LeastRequest
			if err := onlyFields(m, path, "choice_count", "active_request_bias"); err != nil {
				return false, err
			}
			if b := m.GetActiveRequestBias(); b != nil && b.GetDefaultValue() != 1 {
				return false, fmt.Errorf("%s.active_request_bias: %v not supported (1.0 only)", path, b.GetDefaultValue())
			}
			c.lbOpts.ChoiceCount = m.GetChoiceCount().GetValue()
			return false, nil
		case *lbring.RingHash:
			c.policy = lb.RingHash
			if err := onlyFields(m, path, "hash_function", "minimum_ring_size", "maximum_ring_size"); err != nil {
				return false, err
			}
			if m.GetHashFunction() != lbring.RingHash_DEFAULT_HASH && m.GetHashFunction() != lbring.RingHash_XX_HASH {
				return false, fmt.Errorf("%s.hash_function: %s not supported (XX_HASH only)", path, m.GetHashFunction())
			}
			c.lbOpts.MinRingSize = m.GetMinimumRingSize().GetValue()
			c.lbOpts.MaxRingSize = m.GetMaximumRingSize().GetValue()
			return false, nil
		case *lbmaglev.Maglev:
			c.policy = lb.Maglev
			if err := onlyFields(m, path, "table_size"); err != nil {
				return false, err
			}
			c.lbOpts.TableSize = m.GetTableSize().GetValue()
			return false, nil
		case *lbcp.ClusterProvided:
			if c.typ != OriginalDst {
				return false, fmt.Errorf("%s: ClusterProvided is only for ORIGINAL_DST clusters", path)
			}
			return true, onlyFields(m, path)
		}
	}
	return false, fmt.Errorf("load_balancing_policy: none of %q is supported (round_robin, least_request, random, ring_hash, maglev, cluster_provided)", names)
}

// compileTransport accepts only plaintext upstreams for now.
func (c *Cluster) compileTransport(pb *clusterv3.Cluster) error {
	ts := pb.GetTransportSocket()
	if ts == nil {
		return nil
	}
	if tc := ts.GetTypedConfig(); tc != nil {
		if tc.MessageIs(&rawbufv3.RawBuffer{}) {
			return nil
		}
		if tc.GetTypeUrl() == "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext" {
			return errors.New("transport_socket: TLS upstreams arrive with mTLS")
		}
		return fmt.Errorf("transport_socket: %s not supported (raw_buffer only)", tc.GetTypeUrl())
	}
	if ts.GetName() == "envoy.transport_sockets.raw_buffer" || ts.GetName() == "raw_buffer" {
		return nil
	}
	return fmt.Errorf("transport_socket: %q not supported (raw_buffer only)", ts.GetName())
}

// compileConnection reads upstream_bind_config and
// upstream_connection_options into the dialer.
func (c *Cluster) compileConnection(pb *clusterv3.Cluster) error {
	c.dialer.KeepAlive = -1 // Envoy: no TCP keepalive unless configured
	if err := c.compileBind(pb.GetUpstreamBindConfig()); err != nil {
		return fmt.Errorf("upstream_bind_config: %w", err)
	}
	o := pb.GetUpstreamConnectionOptions()
	if o == nil {
		return nil
	}
	if err := onlyFields(o, "upstream_connection_options", "tcp_keepalive"); err != nil {
		return err
	}
	if ka := o.GetTcpKeepalive(); ka != nil {
		c.dialer.KeepAliveConfig = net.KeepAliveConfig{
			Enable:   true,
			Idle:     secondsOr(ka.GetKeepaliveTime().GetValue(), -1),
			Interval: secondsOr(ka.GetKeepaliveInterval().GetValue(), -1),
			Count:    int(ka.GetKeepaliveProbes().GetValue()),
		}
		if c.dialer.KeepAliveConfig.Count == 0 {
			c.dialer.KeepAliveConfig.Count = -1
		}
		c.dialer.KeepAlive = 0
	}
	return nil
}

// compileBind reads upstream_bind_config: the local address every upstream
// connection is made from (the control plane's inbound clusters connect to
// the app from 127.0.0.6, which the capture rules never redirect). Only
// source_address is supported; a connection to an address of the other
// family fails, as in Envoy without extra_source_addresses.
func (c *Cluster) compileBind(b *corev3.BindConfig) error {
	if b == nil {
		return nil
	}
	if err := onlyFields(b, "", "source_address"); err != nil {
		return err
	}
	sa := b.GetSourceAddress()
	if sa == nil {
		return errors.New("source_address: required")
	}
	if err := onlyFields(sa, "source_address", "address", "port_value", "protocol"); err != nil {
		return err
	}
	if sa.GetProtocol() != corev3.SocketAddress_TCP {
		return errors.New("source_address.protocol: TCP only")
	}
	ip, err := netip.ParseAddr(sa.GetAddress())
	if err != nil || ip.Zone() != "" {
		return fmt.Errorf("source_address.address: %q is not an IP address", sa.GetAddress())
	}
	if sa.GetPortValue() > 65535 {
		return fmt.Errorf("source_address.port_value: %d is not a port", sa.GetPortValue())
	}
	c.dialer.LocalAddr = &net.TCPAddr{IP: ip.Unmap().AsSlice(), Port: int(sa.GetPortValue())}
	return nil
}

// secondsOr is n seconds, or def (the system's default) when n is 0.
func secondsOr(n uint32, def time.Duration) time.Duration {
	if n == 0 {
		return def
	}
	return time.Duration(n) * time.Second
}

// h2Keepalive is the connection_keepalive of the HTTP/2 options in force.
func h2Keepalive(pb *clusterv3.Cluster) *corev3.KeepaliveSettings {
	if o := httpOptions(pb); o != nil {
		if h := o.GetExplicitHttpConfig().GetHttp2ProtocolOptions(); h != nil {
			return h.GetConnectionKeepalive()
		}
		return o.GetUseDownstreamProtocolConfig().GetHttp2ProtocolOptions().GetConnectionKeepalive()
	}
	return pb.GetHttp2ProtocolOptions().GetConnectionKeepalive()
}

package upstream

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"golang.org/x/net/http2"

	"github.com/skeinmesh/skein/sidecar/lb"
)

// Type is how a cluster learns its hosts, as Envoy's Cluster.type.
type Type int

const (
	// EDS clusters get their hosts from SetAssignment.
	EDS Type = iota
	// Static clusters take the IP addresses of their load_assignment.
	Static
	// StrictDNS clusters resolve the host names of their load_assignment
	// every dns_refresh_rate; every address resolved is a host.
	StrictDNS
	// LogicalDNS clusters are StrictDNS clusters of one endpoint that keep
	// only the first address each resolution returns (see the package doc).
	LogicalDNS
	// OriginalDst clusters connect to the original destination of the
	// downstream connection, given in PickContext.OriginalDst.
	OriginalDst
)

var typeNames = [...]string{"EDS", "STATIC", "STRICT_DNS", "LOGICAL_DNS", "ORIGINAL_DST"}

func (t Type) String() string { return typeNames[t] }

// Protocol is the HTTP version a cluster's upstreams speak.
type Protocol int

const (
	// HTTP11 is HTTP/1.1 over keep-alive connections (HTTP1); the default.
	HTTP11 Protocol = iota
	// HTTP2 is HTTP/2 with prior knowledge over TCP (h2c; HTTP2).
	HTTP2
	// Downstream means the request's own protocol: HTTP/2 and gRPC
	// requests go over HTTP2, HTTP/1.x ones over HTTP1
	// (use_downstream_protocol_config).
	Downstream
)

func (p Protocol) String() string {
	return [...]string{"HTTP/1.1", "HTTP/2", "downstream"}[p]
}

// PickContext is what a request tells Pick. The zero value (or nil) is a
// request without a hash key, on a cluster that is not ORIGINAL_DST.
type PickContext struct {
	// Hash is the request's hash key (the route's hash_policy), used by
	// RING_HASH and MAGLEV; ignored unless HasHash. Without one, those
	// policies pick at random, as Envoy does.
	Hash uint64
	// HasHash says Hash is set.
	HasHash bool
	// OriginalDst is the downstream connection's original destination;
	// ORIGINAL_DST clusters connect to it (port replaced by the
	// cluster's upstream_port_override when set); others ignore it.
	OriginalDst netip.AddrPort
}

// Policies are the cluster's resilience settings, kept as the control plane
// sent them for the pieces that enforce them (circuit breaking, outlier
// detection, active health checks). Each of those acts on hosts and pools
// from outside the request path: health checks and outlier detection are
// to call lb.Host.SetHealthy, which every balancer already honours;
// circuit breakers are to gate HTTP1, HTTP2 and DialTCP. The messages are shared with the
// Cluster proto and must not be modified.
type Policies struct {
	// CircuitBreakers is circuit_breakers; nil when unset (Envoy's
	// defaults: 1024 connections, pending requests and requests, 3 retries).
	CircuitBreakers *clusterv3.CircuitBreakers
	// OutlierDetection is outlier_detection; nil means none.
	OutlierDetection *clusterv3.OutlierDetection
	// HealthChecks is health_checks; empty means none.
	HealthChecks []*corev3.HealthCheck
}

// Stats are a cluster's counters, named after Envoy's cluster statistics,
// for the stats package to read; each only grows.
type Stats struct {
	// UpstreamCxTotal counts connections established.
	UpstreamCxTotal atomic.Uint64
	// UpstreamCxConnectFail counts connection attempts that failed,
	// timeouts included.
	UpstreamCxConnectFail atomic.Uint64
	// UpstreamCxConnectTimeout counts attempts that hit connect_timeout.
	UpstreamCxConnectTimeout atomic.Uint64
	// UpstreamCxReused counts HTTP/1.1 connections handed out from the
	// idle pool.
	UpstreamCxReused atomic.Uint64
	// UpstreamCxStale counts idle HTTP/1.1 connections found closed by the
	// peer when about to be reused (and so not reused).
	UpstreamCxStale atomic.Uint64
	// UpstreamCxNoneHealthy counts picks that found no host.
	UpstreamCxNoneHealthy atomic.Uint64
	// MembershipChange counts host set changes.
	MembershipChange atomic.Uint64
	// UpdateSuccess and UpdateRejected count SetAssignment calls and DNS
	// resolutions that were applied, or refused.
	UpdateSuccess, UpdateRejected atomic.Uint64
}

// Cluster is one compiled upstream cluster: its settings (immutable after
// Compile), its current hosts and balancer (swapped atomically by
// SetAssignment and DNS), and a connection pool per host. All methods are
// safe for concurrent use.
type Cluster struct {
	name     string
	edsName  string
	typ      Type
	src      *clusterv3.Cluster
	policy   lb.Policy
	lbOpts   lb.Options
	policies Policies

	connectTimeout time.Duration
	protocol       Protocol
	idleTimeout    time.Duration // HTTP/1.1 and HTTP/2 idle connections; 0 = never
	maxRequests    uint32        // per HTTP/1.1 connection; 0 = unlimited
	maxStreams     uint32        // per HTTP/2 connection, below the peer's; 0 = the peer's
	h2             *http2.Transport
	h2drain        *http2.Transport // for connections to hosts already removed

	// STATIC, STRICT_DNS and LOGICAL_DNS: the load_assignment's endpoints.
	static       []endpointSpec
	dnsRefresh   time.Duration
	dnsFailure   time.Duration
	dnsNetwork   string // "ip", "ip4" or "ip6"
	dnsFamily    clusterv3.Cluster_DnsLookupFamily
	stopDNS      chan struct{}
	resolver     *net.Resolver
	portOverride uint16        // ORIGINAL_DST: 0 = keep the original port
	cleanup      time.Duration // ORIGINAL_DST: unused hosts removed after this

	dialer net.Dialer
	// dial opens connections; tests replace it to see connect_timeout work.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	stats Stats

	mu      sync.Mutex // serialises host set changes and Close
	closed  bool
	snap    atomic.Pointer[snapshot]
	lastCLA *endpointv3.ClusterLoadAssignment
	warm    chan struct{}
	warmed  bool

	origMu     sync.RWMutex // ORIGINAL_DST hosts
	origClosed bool         // Close ran; guarded by origMu
	orig       map[netip.AddrPort]*endpoint
	origHosts  map[*lb.Host]*endpoint
	origTimer  *time.Timer
}

// snapshot is one host set: the balancer over it and each host's pools.
type snapshot struct {
	bal   *lb.PrioritySet // nil when there is no host
	hosts []*lb.Host
	eps   map[*lb.Host]*endpoint
}

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.name }

// EDSName is the ClusterLoadAssignment name an EDS cluster subscribes to:
// eds_cluster_config.service_name, or the cluster's name when that is
// empty. "" for other types.
func (c *Cluster) EDSName() string { return c.edsName }

// Type is the cluster's discovery type.
func (c *Cluster) Type() Type { return c.typ }

// Policy is the load-balancing policy in use; meaningless for
// ORIGINAL_DST, whose host is given.
func (c *Cluster) Policy() lb.Policy { return c.policy }

// Protocol is the upstream HTTP protocol.
func (c *Cluster) Protocol() Protocol { return c.protocol }

// ConnectTimeout is connect_timeout (5s when unset).
func (c *Cluster) ConnectTimeout() time.Duration { return c.connectTimeout }

// Policies returns the resilience settings kept for later enforcement.
func (c *Cluster) Policies() Policies { return c.policies }

// Proto is the Cluster the cluster was compiled from; do not modify it.
func (c *Cluster) Proto() *clusterv3.Cluster { return c.src }

// Stats returns the cluster's counters.
func (c *Cluster) Stats() *Stats { return &c.stats }

// Warmed is closed once the cluster has had its first host set: at once
// for STATIC and ORIGINAL_DST, on the first SetAssignment for EDS, on the
// first resolution for DNS clusters. The assembly may wait on it before
// routing to a new cluster, as Envoy warms clusters.
func (c *Cluster) Warmed() <-chan struct{} { return c.warm }

// Hosts returns the current hosts, healthy or not, in load_assignment
// order. For the admin page, health checks and tests; it allocates. The
// slice is a snapshot of the host set, the caller's to keep; the hosts'
// weight, priority, locality, health and in-flight count are read
// atomically, so reading them races with no endpoint update or DNS
// refresh (a later update may change a kept host's weight in place).
func (c *Cluster) Hosts() []*lb.Host {
	if c.typ == OriginalDst {
		c.origMu.RLock()
		defer c.origMu.RUnlock()
		out := make([]*lb.Host, 0, len(c.origHosts))
		for h := range c.origHosts {
			out = append(out, h)
		}
		return out
	}
	return append([]*lb.Host(nil), c.snap.Load().hosts...)
}

// HostCount is the number of hosts Pick chooses among, healthy or not: 1
// for ORIGINAL_DST (a request's host is its destination). It allocates
// nothing.
func (c *Cluster) HostCount() int {
	if c.typ == OriginalDst {
		return 1
	}
	return len(c.snap.Load().hosts)
}

// Pick chooses the host for one request. It allocates nothing once the
// host exists (an ORIGINAL_DST cluster creates a host per new destination).
// The errors are ErrNoHealthyUpstream and ErrNoOriginalDst, returned as
// they are. Pick does not count the request on the host: the caller calls
// h.Acquire() once it commits to the host and h.Release() when the
// response is over (least request reads that count), whether or not a
// connection was obtained.
func (c *Cluster) Pick(pc *PickContext) (*lb.Host, error) {
	if c.typ == OriginalDst {
		return c.pickOriginal(pc)
	}
	s := c.snap.Load()
	if s.bal == nil {
		c.stats.UpstreamCxNoneHealthy.Add(1)
		return nil, ErrNoHealthyUpstream
	}
	var hash uint64
	if pc != nil && pc.HasHash {
		hash = pc.Hash
	} else if c.policy == lb.RingHash || c.policy == lb.Maglev {
		hash = rand.Uint64()
	}
	h := s.bal.Pick(hash)
	if h == nil {
		c.stats.UpstreamCxNoneHealthy.Add(1)
		return nil, ErrNoHealthyUpstream
	}
	return h, nil
}

// endpointOf returns h's pools, or nil when h is no longer one of the
// cluster's hosts (removed after it was picked) or the cluster is closed.
func (c *Cluster) endpointOf(h *lb.Host) *endpoint {
	var ep *endpoint
	if c.typ == OriginalDst {
		c.origMu.RLock()
		ep = c.origHosts[h]
		c.origMu.RUnlock()
		if ep != nil {
			ep.used.Store(true)
		}
	} else {
		ep = c.snap.Load().eps[h]
	}
	return ep
}

// Close drains the cluster: DNS resolution stops, idle connections close,
// connections in use close when released (HTTP/2 ones once their streams
// end). Requests in flight finish; a host picked before Close still gets a
// connection, one that is not pooled. Close is idempotent.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if c.stopDNS != nil {
		close(c.stopDNS)
	}
	for _, ep := range c.snap.Load().eps {
		ep.drain()
	}
	c.origMu.Lock()
	defer c.origMu.Unlock()
	c.origClosed = true
	if c.origTimer != nil {
		c.origTimer.Stop()
	}
	for _, ep := range c.orig {
		ep.drain()
	}
}

// markWarm closes the Warmed channel once; c.mu is held.
func (c *Cluster) markWarm() {
	if !c.warmed {
		c.warmed = true
		close(c.warm)
	}
}

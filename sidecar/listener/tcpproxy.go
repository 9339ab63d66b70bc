package listener

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
)

// Dialer connects to a cluster's host for one downstream connection. The
// assembly adapts sidecar/upstream to it: it picks the host (for an
// ORIGINAL_DST cluster, info.Destination; for PassthroughCluster on an
// inbound listener, the app from 127.0.0.6), applies the cluster's connect
// timeout, and fails for a cluster without hosts (BlackHoleCluster), which
// closes the downstream connection.
type Dialer interface {
	DialCluster(ctx context.Context, cluster string, info *ConnInfo) (net.Conn, error)
}

// DefaultTCPIdleTimeout is tcp_proxy's idle_timeout when unset: Envoy's
// default of one hour.
const DefaultTCPIdleTimeout = time.Hour

// TCPProxy is a compiled tcp_proxy: it connects to its cluster (or one of
// its weighted clusters, chosen per connection) and copies both ways,
// keeping half-closes, until both directions end, the connection is idle
// for IdleTimeout, or it has lasted MaxDuration.
type TCPProxy struct {
	// Clusters are the clusters, Weights their weights (one cluster: one
	// weight, ignored).
	Clusters []string
	Weights  []uint32
	// IdleTimeout closes a connection with no bytes either way for that
	// long; 0 never does. Compiled from idle_timeout: unset is
	// DefaultTCPIdleTimeout, 0s is none. It is enforced within a quarter
	// of itself (see pipe).
	IdleTimeout time.Duration
	// MaxConnectAttempts is how often a connection is tried before the
	// downstream connection is closed; 0 means 1.
	MaxConnectAttempts int
	// MaxDuration closes a connection that has lasted that long; 0 never
	// does. Compiled from max_downstream_connection_duration.
	MaxDuration time.Duration
	// Dialer connects to the cluster. Required.
	Dialer Dialer
	// OnError is told why a connection could not be proxied; nil drops
	// the reason.
	OnError func(error)

	total uint64 // sum of Weights
}

var _ ConnHandler = (*TCPProxy)(nil)

// tcp_proxy fields that are accepted and ignored: stats and access logs.
var tcpProxyFields = []string{
	"stat_prefix", "cluster", "weighted_clusters", "idle_timeout", "max_connect_attempts",
	"max_downstream_connection_duration", "access_log", "access_log_options", "flush_access_log_on_connected",
}

// NewTCPProxyFactory returns the factory for tcp_proxy filters, which dial
// through d and report failures to onError (nil: dropped).
func NewTCPProxyFactory(d Dialer, onError func(error)) FilterFactory {
	return func(f *listenerv3.Filter) (Filter, error) {
		var cfg tcpproxyv3.TcpProxy
		if err := f.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
			return Filter{}, err
		}
		p, err := CompileTCPProxy(&cfg)
		if err != nil {
			return Filter{}, err
		}
		p.Dialer, p.OnError = d, onError
		return Filter{Terminal: p}, nil
	}
}

// CompileTCPProxy compiles a TcpProxy; the caller sets Dialer and OnError.
// Error paths are relative to the TcpProxy.
func CompileTCPProxy(cfg *tcpproxyv3.TcpProxy) (*TCPProxy, error) {
	if err := onlyFields(cfg, "", tcpProxyFields...); err != nil {
		return nil, err
	}
	p := &TCPProxy{IdleTimeout: DefaultTCPIdleTimeout, MaxConnectAttempts: 1}
	switch spec := cfg.GetClusterSpecifier().(type) {
	case *tcpproxyv3.TcpProxy_Cluster:
		if spec.Cluster == "" {
			return nil, fieldErr("cluster", "empty")
		}
		p.Clusters, p.Weights, p.total = []string{spec.Cluster}, []uint32{1}, 1
	case *tcpproxyv3.TcpProxy_WeightedClusters:
		cs := spec.WeightedClusters.GetClusters()
		if len(cs) == 0 {
			return nil, fieldErr("weighted_clusters.clusters", "empty")
		}
		for i, c := range cs {
			path := at("weighted_clusters.clusters", i)
			if err := onlyFields(c, path, "name", "weight"); err != nil {
				return nil, err
			}
			if c.GetName() == "" {
				return nil, fieldErr(dot(path, "name"), "empty")
			}
			if c.GetWeight() == 0 {
				return nil, fieldErr(dot(path, "weight"), "must be at least 1")
			}
			p.Clusters = append(p.Clusters, c.GetName())
			p.Weights = append(p.Weights, c.GetWeight())
			p.total += uint64(c.GetWeight())
		}
	default:
		return nil, fieldErr("cluster", "required (or weighted_clusters)")
	}
	if d := cfg.GetIdleTimeout(); d != nil {
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return nil, fieldErr("idle_timeout", "not a valid duration")
		}
		p.IdleTimeout = d.AsDuration()
	}
	if d := cfg.GetMaxDownstreamConnectionDuration(); d != nil {
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return nil, fieldErr("max_downstream_connection_duration", "not a valid duration")
		}
		p.MaxDuration = d.AsDuration()
	}
	if n := cfg.GetMaxConnectAttempts(); n != nil {
		if n.GetValue() < 1 {
			return nil, fieldErr("max_connect_attempts", "must be at least 1")
		}
		p.MaxConnectAttempts = int(n.GetValue())
	}
	return p, nil
}

// cluster picks the connection's cluster by weight.
func (p *TCPProxy) cluster() string {
	if len(p.Clusters) == 1 {
		return p.Clusters[0]
	}
	total := p.total
	if total == 0 { // built by hand, not compiled
		for _, w := range p.Weights {
			total += uint64(w)
		}
	}
	n := rand.Uint64N(total)
	for i, w := range p.Weights {
		if n < uint64(w) {
			return p.Clusters[i]
		}
		n -= uint64(w)
	}
	return p.Clusters[len(p.Clusters)-1]
}

// ServeConn connects to the cluster and proxies c until both sides are
// done. A connection that cannot be made closes c.
func (p *TCPProxy) ServeConn(ctx context.Context, c net.Conn, info *ConnInfo) {
	defer c.Close()
	cluster := p.cluster()
	attempts := max(p.MaxConnectAttempts, 1)
	var up net.Conn
	var err error
	for range attempts {
		if up, err = p.Dialer.DialCluster(ctx, cluster, info); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		if p.OnError != nil {
			p.OnError(fmt.Errorf("listener %q chain %q: connection from %s to %s: cluster %q: %w",
				info.Listener, info.Chain, info.Source, info.Destination, cluster, err))
		}
		return
	}
	defer up.Close()
	if pc, ok := c.(*peekedConn); ok {
		// Replay what protocol detection read, then copy from the socket
		// itself, so that TCP to TCP can splice.
		if len(pc.buf) > 0 {
			if _, err := up.Write(pc.buf); err != nil {
				return
			}
			pc.buf = nil
		}
		c = pc.Conn
	}
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
	defer stop()
	if p.MaxDuration > 0 {
		t := time.AfterFunc(p.MaxDuration, func() { c.Close(); up.Close() })
		defer t.Stop()
	}
	pipe(c, up, p.IdleTimeout)
}

package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/skeinmesh/skein/sidecar/lb"
	"github.com/skeinmesh/skein/sidecar/listener"
	"github.com/skeinmesh/skein/sidecar/passthrough"
	"github.com/skeinmesh/skein/sidecar/stats"
	"github.com/skeinmesh/skein/sidecar/upstream"
)

// Names of the clusters the control plane (and the fallback) use for
// traffic to unknown destinations.
const (
	// PassthroughCluster is the ORIGINAL_DST cluster: a connection goes
	// where it was going.
	PassthroughCluster = "PassthroughCluster"
	// BlackHoleCluster has no hosts: its connections are closed.
	BlackHoleCluster = "BlackHoleCluster"
)

// errBlackHole is the dial error of BlackHoleCluster.
var errBlackHole = errors.New("BlackHoleCluster: the destination is not allowed")

// dialer adapts the clusters to listener.Dialer for tcp_proxy: the cluster
// by name, a host by Pick (the original destination for ORIGINAL_DST),
// a new TCP connection within the cluster's connect timeout.
type dialer struct{ p *Proxy }

var _ listener.Dialer = dialer{}

// upConn is what a TCP proxy's dial took, given back when its downstream
// connection ends.
type upConn struct {
	host  *lb.Host
	stats *stats.Cluster
}

func (d dialer) DialCluster(ctx context.Context, name string, info *listener.ConnInfo) (net.Conn, error) {
	c := d.p.clusters.Get(name)
	if c == nil {
		if name == BlackHoleCluster {
			return nil, errBlackHole
		}
		return nil, fmt.Errorf("no cluster of that name")
	}
	st := (*d.p.clusterStats.Load())[name]
	if c.Type() == upstream.OriginalDst && info.Direction == corev3.TrafficDirection_INBOUND {
		// Into the pod: the app at the port the connection was addressed
		// to, from 127.0.0.6, which the capture rules let through.
		ctx, cancel := context.WithTimeout(ctx, c.ConnectTimeout())
		defer cancel()
		conn, err := passthrough.DialInbound(ctx, info.Destination)
		if err != nil {
			st.ConnectFailed()
			return nil, err
		}
		st.ConnOpened()
		d.p.conns.Store(info, &upConn{stats: st})
		return conn, nil
	}
	h, err := c.Pick(&upstream.PickContext{OriginalDst: info.Destination})
	if err != nil {
		if name == BlackHoleCluster {
			return nil, errBlackHole
		}
		return nil, err
	}
	h.Acquire()
	conn, err := c.DialTCP(ctx, h)
	if err != nil {
		h.Release()
		st.ConnectFailed()
		return nil, err
	}
	st.ConnOpened()
	d.p.conns.Store(info, &upConn{host: h, stats: st})
	return conn, nil
}

// counting wraps a filter factory so that its terminal filters count their
// connections on the listener's metrics and give back what the dial took.
func (p *Proxy) counting(f listener.FilterFactory) listener.FilterFactory {
	return func(lf *listenerv3.Filter) (listener.Filter, error) {
		flt, err := f(lf)
		if err == nil && flt.Terminal != nil {
			flt.Terminal = counted{p, flt.Terminal}
		}
		return flt, err
	}
}

// counted is a terminal filter that counts its connections.
type counted struct {
	p    *Proxy
	next listener.ConnHandler
}

func (h counted) ServeConn(ctx context.Context, c net.Conn, info *listener.ConnInfo) {
	ls := (*h.p.listenerStats.Load())[info.Listener]
	ls.ConnAccepted()
	defer ls.ConnClosed()
	defer func() {
		if v, ok := h.p.conns.LoadAndDelete(info); ok {
			u := v.(*upConn)
			u.stats.ConnClosed()
			if u.host != nil {
				u.host.Release()
			}
		}
	}()
	h.next.ServeConn(ctx, c, info)
}

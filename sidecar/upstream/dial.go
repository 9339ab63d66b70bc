package upstream

import (
	"context"
	"errors"
	"net"

	"github.com/skeinmesh/skein/sidecar/lb"
)

// connect opens a TCP connection to addr within the cluster's
// connect_timeout. When ctx ends first, its error is returned as it is
// (the caller gave up); otherwise failures are *Error matching
// ErrConnectTimeout or ErrConnectFailure.
func (c *Cluster) connect(ctx context.Context, addr string) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.connectTimeout)
	defer cancel()
	conn, err := c.dial(dctx, "tcp", addr)
	if err == nil {
		c.stats.UpstreamCxTotal.Add(1)
		return conn, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	c.stats.UpstreamCxConnectFail.Add(1)
	if errors.Is(dctx.Err(), context.DeadlineExceeded) {
		c.stats.UpstreamCxConnectTimeout.Add(1)
		return nil, &Error{Status: ErrConnectTimeout.Status, Detail: ErrConnectTimeout.Detail, Host: addr, Err: err}
	}
	return nil, &Error{Status: ErrConnectFailure.Status, Detail: ErrConnectFailure.Detail, Host: addr, Err: err}
}

// DialTCP opens a new TCP connection to h for a TCP proxy, within the
// connect timeout; the caller owns and closes it. Errors are those of
// HTTP1.
func (c *Cluster) DialTCP(ctx context.Context, h *lb.Host) (net.Conn, error) {
	return c.connect(ctx, h.Address)
}

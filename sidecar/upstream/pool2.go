package upstream

import (
	"context"
	"time"

	"golang.org/x/net/http2"

	"github.com/skeinmesh/skein/sidecar/lb"
)

// initialStreams is what golang.org/x/net/http2 assumes of a peer before
// its SETTINGS arrive.
const initialStreams = 100

// drainGrace is how long a drained HTTP/2 connection stays open after its
// last stream, so that a caller that got it from HTTP2 just before the
// drain still runs its request on it.
const drainGrace = time.Second

// HTTP2 returns a multiplexed HTTP/2 connection (prior knowledge, h2c) to
// h for one request: the first pooled connection with a stream to spare
// (below the peer's SETTINGS_MAX_CONCURRENT_STREAMS and the cluster's
// max_concurrent_streams), else a new one. One dial per host is in
// progress at a time: concurrent callers wait for it and share the new
// connection. Connections that are closed, closing or got a GOAWAY leave
// the pool. A pooled connection comes with one stream reserved for the
// caller (ClientConn.ReserveNewRequest), so that concurrent callers see it
// taken: call RoundTrip on it exactly once (a caller giving up without a
// request releases the reservation with RoundTrip(new(http.Request)), as
// golang.org/x/net/http2 documents), and read the response body to its
// end (trailers follow it) or close it. For a host no longer in the
// cluster the connection is new, not pooled, and closes when idle.
func (c *Cluster) HTTP2(ctx context.Context, h *lb.Host) (*http2.ClientConn, error) {
	ep := c.endpointOf(h)
	for ep != nil {
		cc, wait, dial := ep.h2pick()
		switch {
		case cc != nil:
			return cc, nil
		case wait != nil:
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case dial != nil:
			cc, err := c.dialH2(ctx, h, c.h2)
			ep.mu.Lock()
			ep.h2dial = nil
			close(dial)
			pooled := err == nil && !ep.closed
			if pooled {
				cc.ReserveNewRequest()
				ep.h2 = append(ep.h2, cc)
			}
			ep.mu.Unlock()
			if err == nil && !pooled {
				go closeWhenIdle(cc)
			}
			return cc, err
		default:
			ep = nil // drained
		}
	}
	cc, err := c.dialH2(ctx, h, c.h2drain)
	if err == nil {
		go closeWhenIdle(cc)
	}
	return cc, err
}

// h2pick returns a pooled connection with room, or a channel to wait on
// while another caller dials, or (dial non-nil) the duty to dial, or
// nothing when the endpoint is drained.
func (ep *endpoint) h2pick() (cc *http2.ClientConn, wait, dial chan struct{}) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closed {
		return nil, nil, nil
	}
	live := ep.h2[:0]
	for _, x := range ep.h2 {
		st := x.State()
		if st.Closed || st.Closing {
			continue
		}
		live = append(live, x)
		if cc != nil {
			continue
		}
		limit := st.MaxConcurrentStreams
		if limit == 0 {
			limit = initialStreams
		}
		if m := ep.c.maxStreams; m > 0 && m < limit {
			limit = m
		}
		if st.StreamsActive+st.StreamsReserved+st.StreamsPending < int(limit) && x.ReserveNewRequest() {
			cc = x
		}
	}
	clear(ep.h2[len(live):])
	ep.h2 = live
	if cc != nil {
		return cc, nil, nil
	}
	if ep.h2dial != nil {
		return nil, ep.h2dial, nil
	}
	ep.h2dial = make(chan struct{})
	return nil, nil, ep.h2dial
}

func (c *Cluster) dialH2(ctx context.Context, h *lb.Host, t *http2.Transport) (*http2.ClientConn, error) {
	conn, err := c.connect(ctx, h.Address)
	if err != nil {
		return nil, err
	}
	cc, err := t.NewClientConn(conn)
	if err != nil {
		conn.Close()
		return nil, &Error{Status: ErrConnectFailure.Status, Detail: ErrConnectFailure.Detail, Host: h.Address, Err: err}
	}
	return cc, nil
}

// closeWhenIdle closes cc once it has carried no stream for drainGrace.
func closeWhenIdle(cc *http2.ClientConn) {
	tick := time.NewTicker(drainGrace / 4)
	defer tick.Stop()
	var quiet time.Duration
	for range tick.C {
		st := cc.State()
		if st.Closed {
			return
		}
		if st.StreamsActive+st.StreamsReserved+st.StreamsPending > 0 {
			quiet = 0
			continue
		}
		if quiet += drainGrace / 4; quiet >= drainGrace {
			cc.Close()
			return
		}
	}
}

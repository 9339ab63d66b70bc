package server

import (
	"context"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	xdsserver "github.com/envoyproxy/go-control-plane/pkg/server/v3"
)

// callbacks are the go-control-plane server's hooks into a Server. The
// stream callbacks of one stream run on that stream's goroutine.
type callbacks struct{ s *Server }

var _ xdsserver.Callbacks = callbacks{}

func (c callbacks) OnStreamOpen(ctx context.Context, id int64, _ string) error {
	return c.s.openStream(ctx, streamKey{id: id})
}

func (c callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, _ string) error {
	return c.s.openStream(ctx, streamKey{delta: true, id: id})
}

func (c callbacks) OnStreamClosed(id int64, _ *core.Node) { c.s.closeStream(streamKey{id: id}) }

func (c callbacks) OnDeltaStreamClosed(id int64, _ *core.Node) {
	c.s.closeStream(streamKey{delta: true, id: id})
}

func (c callbacks) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	st := c.s.stream(streamKey{id: id})
	if st == nil {
		return nil
	}
	if err := c.s.attach(st, req.GetNode()); err != nil {
		return err
	}
	c.s.observeRequest(st, st.sotw, req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	return nil
}

func (c callbacks) OnStreamResponse(_ context.Context, id int64, req *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	if st := c.s.stream(streamKey{id: id}); st != nil {
		st.sotw[resp.GetTypeUrl()] = sentResponse{nonce: resp.GetNonce(), version: resp.GetVersionInfo()}
	}
	c.s.metrics.pushes.WithLabelValues(shortType(resp.GetTypeUrl())).Inc()
}

func (c callbacks) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	st := c.s.stream(streamKey{delta: true, id: id})
	if st == nil {
		return nil
	}
	if err := c.s.attach(st, req.GetNode()); err != nil {
		return err
	}
	c.s.observeRequest(st, st.delta, req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	return nil
}

func (c callbacks) OnStreamDeltaResponse(id int64, req *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	if st := c.s.stream(streamKey{delta: true, id: id}); st != nil {
		st.delta[resp.GetTypeUrl()] = sentResponse{nonce: resp.GetNonce(), version: resp.GetSystemVersionInfo()}
	}
	c.s.metrics.pushes.WithLabelValues(shortType(resp.GetTypeUrl())).Inc()
}

// OnFetchRequest authenticates and authorizes a unary Fetch. Fetch answers
// only while the proxy has a stream open: snapshots exist for connected
// proxies only.
func (c callbacks) OnFetchRequest(ctx context.Context, req *discovery.DiscoveryRequest) error {
	id, err := c.s.authenticate(ctx)
	if err != nil {
		return err
	}
	_, err = c.s.authorizeNode(id, req.GetNode())
	return err
}

func (c callbacks) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}

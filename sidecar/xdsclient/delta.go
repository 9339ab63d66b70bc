package xdsclient

import (
	"context"
	"fmt"
	"maps"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"
)

// runDelta runs one delta (incremental) ADS stream.
func (c *client) runDelta(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) (bool, error) {
	st, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	// Receiving starts first, so that a Send that fails with io.EOF can
	// learn the stream's status from it (see sendError).
	msgs, errc := make(chan *discoveryv3.DeltaDiscoveryResponse), make(chan error, 1)
	go receive(ctx, st.Recv, msgs, errc)
	for i, t := range c.o.Types {
		ts := c.types[t]
		// The stream starts from what the proxy runs: the server skips the
		// resources whose versions match and removes the ones it no longer has.
		ts.received, ts.receivedVersions = ts.applied, ts.appliedVersions
		// No names subscribed: a (legacy) wildcard subscription, as Envoy sends.
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: t, InitialResourceVersions: maps.Clone(ts.appliedVersions)}
		if i == 0 {
			req.Node = c.o.Node
		}
		if err := st.Send(req); err != nil {
			return false, sendError(ctx, err, msgs, errc)
		}
	}

	answered := false
	for {
		select {
		case <-ctx.Done():
			return answered, ctx.Err()
		case err := <-errc:
			return answered, err
		case resp := <-msgs:
			if !answered {
				answered = true
				c.o.Logger.Info("Connected to the xDS server", "target", c.o.Target, "delta", true)
				c.o.OnState(Connected)
			}
			req := c.deltaResponse(resp)
			if req == nil {
				continue
			}
			if err := st.Send(req); err != nil {
				return answered, sendError(ctx, err, msgs, errc)
			}
		}
	}
}

// deltaResponse applies a delta response to the type's set and returns its
// ACK or NACK; nil when the response is ignored.
func (c *client) deltaResponse(resp *discoveryv3.DeltaDiscoveryResponse) *discoveryv3.DeltaDiscoveryRequest {
	t := resp.GetTypeUrl()
	ts := c.types[t]
	log := c.o.Logger.With("type", shortType(t), "version", resp.GetSystemVersionInfo())
	if ts == nil {
		log.Debug("Ignoring a response of a type not subscribed to")
		return nil
	}
	next, nextVersions, err := deltaSet(t, ts.received, ts.receivedVersions, resp)
	changed := false
	if err == nil {
		// The server now believes the client has next, whether or not the
		// Handler takes it; the next response is relative to it.
		ts.received, ts.receivedVersions = next, nextVersions
		changed, err = c.apply(t, ts, resp.GetSystemVersionInfo(), next)
	}
	if err != nil {
		log.Warn("Rejected xDS resources; keeping the previous ones", "error", err.Error())
		return &discoveryv3.DeltaDiscoveryRequest{
			TypeUrl:       t,
			ResponseNonce: resp.GetNonce(),
			ErrorDetail:   &statuspb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()},
		}
	}
	ts.appliedVersions = nextVersions
	if changed {
		log.Info("Applied xDS resources", "resources", len(next), "updated", len(resp.GetResources()), "removed", len(resp.GetRemovedResources()))
	}
	return &discoveryv3.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: resp.GetNonce()}
}

// deltaSet is the set, and its versions, after applying resp to cur. The
// maps passed in are not modified.
func deltaSet(t string, cur map[string]*anypb.Any, curVersions map[string]string, resp *discoveryv3.DeltaDiscoveryResponse) (map[string]*anypb.Any, map[string]string, error) {
	next, nextVersions := maps.Clone(cur), maps.Clone(curVersions)
	if next == nil {
		next = map[string]*anypb.Any{}
	}
	if nextVersions == nil {
		nextVersions = map[string]string{}
	}
	for i, r := range resp.GetResources() {
		if r.GetName() == "" {
			return nil, nil, fmt.Errorf("resources[%d] (%s): name is empty", i, shortType(t))
		}
		if r.GetResource() == nil {
			// A TTL refresh without a body keeps the resource as it is.
			continue
		}
		if got := r.GetResource().GetTypeUrl(); got != t {
			return nil, nil, fmt.Errorf("%s %q: type %s in a %s response", shortType(t), r.GetName(), got, shortType(t))
		}
		next[r.GetName()] = r.GetResource()
		nextVersions[r.GetName()] = r.GetVersion()
	}
	for _, name := range resp.GetRemovedResources() {
		delete(next, name)
		delete(nextVersions, name)
	}
	return next, nextVersions, nil
}

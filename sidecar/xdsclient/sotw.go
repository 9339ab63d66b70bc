package xdsclient

import (
	"context"
	"fmt"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
)

// runSotW runs one state-of-the-world ADS stream.
func (c *client) runSotW(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) (bool, error) {
	st, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	// Receiving starts first, so that a Send that fails with io.EOF can
	// learn the stream's status from it (see sendError).
	msgs, errc := make(chan *discoveryv3.DiscoveryResponse), make(chan error, 1)
	go receive(ctx, st.Recv, msgs, errc)
	for i, t := range c.o.Types {
		ts := c.types[t]
		ts.nackedVersion, ts.nackRepeats = "", 0
		// Empty resource names: a (legacy) wildcard subscription, which
		// go-control-plane's ADS-mode cache answers; an explicit "*" it does not.
		req := &discoveryv3.DiscoveryRequest{TypeUrl: t, VersionInfo: ts.appliedVersion}
		if i == 0 {
			req.Node = c.o.Node
		}
		if err := st.Send(req); err != nil {
			return false, sendError(ctx, err, msgs, errc)
		}
	}

	// Delayed NACKs, by type: sent when their timer fires unless a newer
	// response of the type replaced them.
	pending := map[string]*discoveryv3.DiscoveryRequest{}
	due := make(chan *discoveryv3.DiscoveryRequest, len(c.o.Types))
	answered := false
	for {
		select {
		case <-ctx.Done():
			return answered, ctx.Err()
		case err := <-errc:
			return answered, err
		case req := <-due:
			if pending[req.TypeUrl] != req {
				continue
			}
			delete(pending, req.TypeUrl)
			if err := st.Send(req); err != nil {
				return answered, sendError(ctx, err, msgs, errc)
			}
		case resp := <-msgs:
			if !answered {
				answered = true
				c.o.Logger.Info("Connected to the xDS server", "target", c.o.Target, "delta", false)
				c.o.OnState(Connected)
			}
			req, wait := c.sotwResponse(resp)
			if req == nil {
				continue
			}
			delete(pending, req.TypeUrl)
			if wait > 0 {
				pending[req.TypeUrl] = req
				time.AfterFunc(wait, func() {
					select {
					case due <- req:
					case <-ctx.Done():
					}
				})
				continue
			}
			if err := st.Send(req); err != nil {
				return answered, sendError(ctx, err, msgs, errc)
			}
		}
	}
}

// sotwResponse applies a response and returns its ACK or NACK, and how long
// to wait before sending it. A nil request means the response is ignored.
func (c *client) sotwResponse(resp *discoveryv3.DiscoveryResponse) (*discoveryv3.DiscoveryRequest, time.Duration) {
	t := resp.GetTypeUrl()
	ts := c.types[t]
	log := c.o.Logger.With("type", shortType(t), "version", resp.GetVersionInfo())
	if ts == nil {
		log.Debug("Ignoring a response of a type not subscribed to")
		return nil, 0
	}
	set, err := sotwSet(t, resp.GetResources())
	changed := false
	if err == nil {
		changed, err = c.apply(t, ts, resp.GetVersionInfo(), set)
	}
	if err == nil {
		ts.appliedVersion = resp.GetVersionInfo()
		ts.nackedVersion, ts.nackRepeats = "", 0
		if changed {
			log.Info("Applied xDS resources", "resources", len(set))
		}
		return &discoveryv3.DiscoveryRequest{TypeUrl: t, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}, 0
	}
	nack := &discoveryv3.DiscoveryRequest{
		TypeUrl:       t,
		VersionInfo:   ts.appliedVersion,
		ResponseNonce: resp.GetNonce(),
		ErrorDetail:   &statuspb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()},
	}
	// A server that answers a NACK by sending the same version again at
	// once (go-control-plane's snapshot cache does) would loop; the same
	// version's NACK is repeated ever more slowly.
	var wait time.Duration
	if ts.nackedVersion == resp.GetVersionInfo() && resp.GetVersionInfo() != "" {
		wait = min(c.o.Backoff.ceiling(ts.nackRepeats), maxNACKRepeatWait)
		ts.nackRepeats++
		log.Debug("Rejected xDS resources again", "error", err.Error(), "nackIn", wait)
	} else {
		ts.nackedVersion, ts.nackRepeats = resp.GetVersionInfo(), 0
		log.Warn("Rejected xDS resources; keeping the previous ones", "error", err.Error())
	}
	return nack, wait
}

// sotwSet keys a state-of-the-world response's resources by name.
func sotwSet(t string, resources []*anypb.Any) (map[string]*anypb.Any, error) {
	set := make(map[string]*anypb.Any, len(resources))
	for i, r := range resources {
		if r.GetTypeUrl() != t {
			return nil, fmt.Errorf("resources[%d]: type %s in a %s response", i, r.GetTypeUrl(), shortType(t))
		}
		name, err := resourceName(r.GetValue())
		if err != nil {
			return nil, fmt.Errorf("resources[%d] (%s): %w", i, shortType(t), err)
		}
		if name == "" {
			return nil, fmt.Errorf("resources[%d] (%s): name is empty", i, shortType(t))
		}
		if _, dup := set[name]; dup {
			return nil, fmt.Errorf("%s %q: sent twice in one response", shortType(t), name)
		}
		set[name] = r
	}
	return set, nil
}

// resourceName reads field 1 of an encoded xDS resource: name for a
// Listener, Cluster, RouteConfiguration or Secret, cluster_name for a
// ClusterLoadAssignment. Reading the wire format keeps the client free of
// the resource types' packages. The last occurrence wins, as in proto.
func resourceName(b []byte) (string, error) {
	var name string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", fmt.Errorf("malformed resource: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", fmt.Errorf("malformed resource name: %w", protowire.ParseError(n))
			}
			name = string(v)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", fmt.Errorf("malformed resource: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return name, nil
}

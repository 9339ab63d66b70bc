// Package xdstest is a raw xDS client for tests and benchmarks of Skein's
// xDS server: one ADS stream (state of the world or delta) for one node ID,
// subscribed to listeners, routes, clusters and endpoints, that ACKs every
// response or NACKs the ones a test rejects, and reports what it accepted.
package xdstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// AllTypes are the types a Client subscribes to by default, in the order
// Envoy does: clusters, endpoints, listeners, routes.
var AllTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// Options configure a Client.
type Options struct {
	// NodeID is the node ID sent on the stream's first request.
	NodeID string
	// Token is sent as "authorization: Bearer <Token>" metadata; empty sends none.
	Token string
	// Delta uses DeltaAggregatedResources instead of StreamAggregatedResources.
	Delta bool
	// Types are the type URLs to subscribe to (as wildcards); nil means AllTypes.
	Types []string
	// Reject, when set, is asked about every response: a non-empty answer
	// NACKs the response with that error detail, and the client keeps what
	// it had; an empty answer ACKs it.
	Reject func(typeURL, version string, resources map[string]*anypb.Any) string
	// OnUpdate, when set, is called on the receiving goroutine after each
	// response was ACKed or NACKed.
	OnUpdate func(Update)
}

// Update is one response the client answered.
type Update struct {
	// TypeURL and Version are the response's (SystemVersionInfo for delta).
	TypeURL, Version string
	// NACKed tells whether the client rejected it.
	NACKed bool
	// Received is when the response arrived.
	Received time.Time
}

// Client is one ADS stream. Its methods are safe for concurrent use.
type Client struct {
	opts   Options
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	closed    bool
	err       error
	versions  map[string]string
	resources map[string]map[string]*anypb.Any
	responses map[string]int
	changed   chan struct{} // closed and replaced on every change
}

// Connect opens an ADS stream on conn, sends the initial requests and starts
// answering responses. A refusal by the server (authentication, node ID)
// shows as Err once Done is closed.
func Connect(ctx context.Context, conn grpc.ClientConnInterface, o Options) (*Client, error) {
	if o.Types == nil {
		o.Types = AllTypes
	}
	ctx, cancel := context.WithCancel(ctx)
	if o.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+o.Token)
	}
	c := &Client{
		opts: o, cancel: cancel, done: make(chan struct{}),
		versions: map[string]string{}, resources: map[string]map[string]*anypb.Any{},
		responses: map[string]int{}, changed: make(chan struct{}),
	}
	ads := discovery.NewAggregatedDiscoveryServiceClient(conn)
	var run func() error
	if o.Delta {
		st, err := ads.DeltaAggregatedResources(ctx)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("open delta ADS stream for %s: %w", o.NodeID, err)
		}
		for i, t := range o.Types {
			req := &discovery.DeltaDiscoveryRequest{TypeUrl: t}
			if i == 0 {
				req.Node = &core.Node{Id: o.NodeID}
			}
			if err := st.Send(req); err != nil {
				if errors.Is(err, io.EOF) {
					break // the server ended the stream: run's Recv reports its status
				}
				cancel()
				return nil, fmt.Errorf("subscribe %s to %s: %w", o.NodeID, t, err)
			}
		}
		run = func() error { return c.runDelta(st) }
	} else {
		st, err := ads.StreamAggregatedResources(ctx)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("open ADS stream for %s: %w", o.NodeID, err)
		}
		for _, t := range o.Types {
			// Every request names the node, as Envoy does by default.
			if err := st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: o.NodeID}, TypeUrl: t}); err != nil {
				if errors.Is(err, io.EOF) {
					break // the server ended the stream: run's Recv reports its status
				}
				cancel()
				return nil, fmt.Errorf("subscribe %s to %s: %w", o.NodeID, t, err)
			}
		}
		run = func() error { return c.runSotW(st) }
	}
	go func() {
		err := run()
		c.mu.Lock()
		c.err = err
		c.signalLocked()
		c.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

func (c *Client) runSotW(st discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient) error {
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		received := time.Now()
		got := map[string]*anypb.Any{}
		for _, a := range resp.GetResources() {
			name, err := resourceName(a)
			if err != nil {
				return err
			}
			got[name] = a
		}
		t := resp.GetTypeUrl()
		req := &discovery.DiscoveryRequest{TypeUrl: t, ResponseNonce: resp.GetNonce()}
		reason := c.reject(t, resp.GetVersionInfo(), got)
		c.mu.Lock()
		c.responses[t]++
		if reason != "" {
			req.VersionInfo = c.versions[t]
			req.ErrorDetail = &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: reason}
		} else {
			req.VersionInfo = resp.GetVersionInfo()
		}
		c.mu.Unlock()
		if err := st.Send(req); err != nil {
			return err
		}
		c.answered(t, resp.GetVersionInfo(), got, reason != "", received)
	}
}

func (c *Client) runDelta(st discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient) error {
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		received := time.Now()
		t := resp.GetTypeUrl()
		c.mu.Lock()
		got := maps.Clone(c.resources[t])
		c.mu.Unlock()
		if got == nil {
			got = map[string]*anypb.Any{}
		}
		for _, r := range resp.GetResources() {
			got[r.GetName()] = r.GetResource()
		}
		for _, name := range resp.GetRemovedResources() {
			delete(got, name)
		}
		req := &discovery.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: resp.GetNonce()}
		reason := c.reject(t, resp.GetSystemVersionInfo(), got)
		if reason != "" {
			req.ErrorDetail = &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: reason}
		}
		c.mu.Lock()
		c.responses[t]++
		c.mu.Unlock()
		if err := st.Send(req); err != nil {
			return err
		}
		c.answered(t, resp.GetSystemVersionInfo(), got, reason != "", received)
	}
}

func (c *Client) reject(t, version string, got map[string]*anypb.Any) string {
	if c.opts.Reject == nil {
		return ""
	}
	return c.opts.Reject(t, version, got)
}

// answered records a response the client answered.
func (c *Client) answered(t, version string, got map[string]*anypb.Any, nacked bool, received time.Time) {
	c.mu.Lock()
	if !nacked {
		c.versions[t] = version
		c.resources[t] = got
	}
	c.signalLocked()
	c.mu.Unlock()
	if c.opts.OnUpdate != nil {
		c.opts.OnUpdate(Update{TypeURL: t, Version: version, NACKed: nacked, Received: received})
	}
}

func (c *Client) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Versions returns the version the client last accepted, by type URL.
func (c *Client) Versions() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.versions)
}

// Resources returns the resources of a type the client last accepted, by name.
func (c *Client) Resources(typeURL string) map[string]*anypb.Any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.resources[typeURL])
}

// Responses returns how many responses of a type the client received,
// accepted or not.
func (c *Client) Responses(typeURL string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.responses[typeURL]
}

// Wait waits until cond, called with the accepted versions by type URL,
// returns true; cond may call the client's methods. It fails when ctx ends
// or the stream ends first.
func (c *Client) Wait(ctx context.Context, cond func(versions map[string]string) bool) error {
	for {
		c.mu.Lock()
		versions, err, changed := maps.Clone(c.versions), c.err, c.changed
		c.mu.Unlock()
		switch ok := cond(versions); {
		case ok:
			return nil
		case err != nil:
			return fmt.Errorf("stream of %s ended: %w", c.opts.NodeID, err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", c.opts.NodeID, ctx.Err())
		}
	}
}

// WaitAll waits until the client accepted a version of every type it subscribed to.
func (c *Client) WaitAll(ctx context.Context) error {
	return c.Wait(ctx, func(v map[string]string) bool {
		for _, t := range c.opts.Types {
			if _, ok := v[t]; !ok {
				return false
			}
		}
		return true
	})
}

// Done is closed when the stream ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is the error the stream ended with: nil while it is open, and also
// nil after Close.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	return c.err
}

// Close ends the stream and waits for the client to stop.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	<-c.done
}

// resourceName returns the name of an xDS resource in an Any.
func resourceName(a *anypb.Any) (string, error) {
	m, err := a.UnmarshalNew()
	if err != nil {
		return "", fmt.Errorf("decode %s: %w", a.GetTypeUrl(), err)
	}
	switch r := m.(type) {
	case interface{ GetClusterName() string }:
		return r.GetClusterName(), nil
	case interface{ GetName() string }:
		return r.GetName(), nil
	}
	return "", fmt.Errorf("%s has no name", proto.MessageName(m))
}

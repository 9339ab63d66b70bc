package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// maxNACKRepeatWait caps the wait before NACKing, again, a state-of-the-world
// response the client already NACKed (see the package doc).
const maxNACKRepeatWait = 10 * time.Second

// typeState is what the client knows of one resource type. Only Run's
// goroutine touches it.
type typeState struct {
	// applied is the set the Handler accepted last (nil before the first);
	// the client never modifies a map once it was passed to the Handler.
	applied map[string]*anypb.Any
	// appliedVersions are applied's resource versions (delta), sent as
	// initial_resource_versions on reconnect.
	appliedVersions map[string]string
	// appliedVersion is applied's version_info (state of the world).
	appliedVersion string
	// handedVersion is the last version given to a VersionedHandler.
	handedVersion string

	// received and receivedVersions are, on the current delta stream, the
	// set the server believes the client has: what it sent, accepted or not.
	received         map[string]*anypb.Any
	receivedVersions map[string]string

	// nackedVersion is the last state-of-the-world version NACKed and
	// nackRepeats how many times in a row it came back.
	nackedVersion string
	nackRepeats   int
}

type client struct {
	o     Options
	h     Handler
	vh    VersionedHandler // h, when it is one; else nil
	delta bool
	types map[string]*typeState
}

// Run keeps an ADS stream to o.Target open and applies what it receives
// through h, until ctx ends; then it returns nil. It returns an error at
// once when o or h is invalid, including dial options grpc refuses.
func Run(ctx context.Context, o Options, h Handler) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	if h == nil {
		return errors.New("xdsclient: nil Handler")
	}
	// NewClient does not connect; it refuses what no retry can mend, such as
	// a malformed target or missing transport credentials.
	conn, err := grpc.NewClient(o.Target, o.DialOptions...)
	if err != nil {
		return fmt.Errorf("xdsclient: %w", err)
	}
	conn.Close()
	c := &client{o: o, h: h, delta: o.Delta, types: make(map[string]*typeState, len(o.Types))}
	c.vh, _ = h.(VersionedHandler)
	for _, t := range o.Types {
		c.types[t] = &typeState{}
	}
	log := o.Logger.With("target", o.Target)
	failures := 0
	for {
		start := time.Now()
		log.Debug("Connecting to the xDS server", "delta", c.delta, "attempt", failures+1)
		answered, err := c.connect(ctx)
		if answered {
			o.OnState(Disconnected)
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > o.Backoff.Reset {
			failures = 0
		}
		if c.delta && !answered && status.Code(err) == codes.Unimplemented {
			log.Info("The xDS server does not implement delta xDS; using state of the world", "error", err.Error())
			c.delta = false
			continue
		}
		wait := o.Backoff.wait(failures)
		if failures == 0 {
			log.Warn("xDS stream failed; serving the last applied config while reconnecting", "error", errString(err), "retryIn", wait)
		} else {
			log.Debug("xDS connection attempt failed", "error", errString(err), "attempt", failures+1, "retryIn", wait)
		}
		failures++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "stream ended"
	}
	return err.Error()
}

// connect runs one stream on a new connection until it fails or ctx ends;
// answered says whether the server sent anything on it.
func (c *client) connect(ctx context.Context) (answered bool, err error) {
	md := c.o.Metadata.Copy()
	if md == nil {
		md = metadata.MD{}
	}
	if c.o.Token != nil {
		tok, err := c.o.Token()
		if err != nil {
			return false, err
		}
		if tok = strings.TrimSpace(tok); tok != "" {
			md.Set("authorization", "Bearer "+tok)
		}
	}
	conn, err := grpc.NewClient(c.o.Target, c.o.DialOptions...)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ctx, md))
	defer cancel()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	if c.delta {
		return c.runDelta(ctx, ads)
	}
	return c.runSotW(ctx, ads)
}

// apply calls the Handler for a new set of t, of the response's version,
// unless it equals the applied one (then a VersionedHandler learns the
// version alone), and records it when accepted.
func (c *client) apply(t string, ts *typeState, version string, set map[string]*anypb.Any) (changed bool, err error) {
	if ts.applied != nil && sameSet(ts.applied, set) {
		if c.vh != nil && version != ts.handedVersion {
			c.vh.SetVersion(t, version)
			ts.handedVersion = version
		}
		return false, nil
	}
	if c.vh != nil {
		err = c.vh.ApplyVersion(t, version, set)
	} else {
		err = c.h.Apply(t, set)
	}
	if err != nil {
		return true, err
	}
	ts.applied, ts.handedVersion = set, version
	return true, nil
}

func sameSet(a, b map[string]*anypb.Any) bool {
	if len(a) != len(b) {
		return false
	}
	for name, ra := range a {
		rb, ok := b[name]
		if !ok || !proto.Equal(ra, rb) {
			return false
		}
	}
	return true
}

// receive delivers a stream's messages to a channel until it fails; the
// error goes to errc (buffered).
func receive[T any](ctx context.Context, recv func() (T, error), out chan<- T, errc chan<- error) {
	for {
		m, err := recv()
		if err != nil {
			errc <- err
			return
		}
		select {
		case out <- m:
		case <-ctx.Done():
			return
		}
	}
}

// sendError is the error of a stream whose Send failed with err: grpc-go's
// SendMsg returns io.EOF when the server ended the stream and gives its
// status only to Recv, so the status comes from the receiving goroutine
// (messages still arriving are dropped: the stream is over). Without it a
// server that refuses delta xDS (Unimplemented) could look like a broken
// stream, and the client would back off instead of falling back to state
// of the world.
func sendError[T any](ctx context.Context, err error, msgs <-chan T, errc <-chan error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for {
		select {
		case rerr := <-errc:
			return rerr
		case <-msgs:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func shortType(t string) string {
	return t[strings.LastIndexByte(t, '.')+1:]
}

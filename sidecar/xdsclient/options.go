package xdsclient

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/anypb"
)

// The resource types Skein's proxy subscribes to, in Envoy's ADS order.
const (
	ClusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	RouteType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
)

// DefaultTypes is the subscription order when Options.Types is empty:
// clusters, endpoints, listeners, routes, the order Envoy subscribes in on
// ADS so that a listener never arrives before the clusters it names.
var DefaultTypes = []string{ClusterType, EndpointType, ListenerType, RouteType}

// Handler applies resources.
type Handler interface {
	// Apply is called with the complete current set of resources of one
	// type, keyed by name (the client keeps the set and applies delta adds
	// and removes itself). A nil error ACKs; a non-nil error NACKs with
	// err.Error() as the message, which should name the resource and the
	// field, and the client keeps the previous set of that type, so the next
	// Apply of another type is made against the old one. Apply is called
	// from one goroutine at a time, never with a set the server did not
	// send, and never with an empty set because the server is away.
	Apply(typeURL string, resources map[string]*anypb.Any) error
}

// VersionedHandler is a Handler that also learns the version of what it
// applies, for the config dump's version_info and the config version
// metric. When the Handler given to Run implements it, the client calls
// ApplyVersion instead of Apply, and SetVersion when only the version
// moved.
//
// The version is the response's version_info (state of the world) or
// system_version_info (delta; "" when the server sends none, and
// Skein's server and go-control-plane's caches send one).
type VersionedHandler interface {
	Handler
	// ApplyVersion is Apply with the version of the response the set
	// came in; the same rules hold.
	ApplyVersion(typeURL, version string, resources map[string]*anypb.Any) error
	// SetVersion is called when a response is ACKed without ApplyVersion
	// because its set equals the applied one, and its version differs from
	// the last one given for typeURL: the applied set is now that version.
	// It cannot refuse.
	SetVersion(typeURL, version string)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(typeURL string, resources map[string]*anypb.Any) error

// Apply calls f.
func (f HandlerFunc) Apply(typeURL string, resources map[string]*anypb.Any) error {
	return f(typeURL, resources)
}

// State is the connection state reported to Options.OnState.
type State int

const (
	// Disconnected: no stream, or the stream ended. The last applied
	// resources keep serving.
	Disconnected State = iota
	// Connected: a stream is open and the server answered on it.
	Connected
)

func (s State) String() string {
	if s == Connected {
		return "connected"
	}
	return "disconnected"
}

// Backoff is the wait between connection attempts: full jitter, a random
// duration in [0, min(Max, Base*2^n)) before the n-th consecutive retry.
type Backoff struct {
	// Base is the first retry's ceiling. Zero means 500ms.
	Base time.Duration
	// Max caps every wait. Zero means 30s.
	Max time.Duration
	// Reset: a stream that lived longer than this starts the next series of
	// retries from Base again. Zero means 30s.
	Reset time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = 500 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Base {
		b.Max = b.Base
	}
	if b.Reset <= 0 {
		b.Reset = 30 * time.Second
	}
	return b
}

// ceiling is the upper bound of the n-th wait (n from 0).
func (b Backoff) ceiling(n int) time.Duration {
	d := b.Base
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// wait is the n-th wait, with full jitter.
func (b Backoff) wait(n int) time.Duration {
	return rand.N(b.ceiling(n)) + 1
}

// Options configure Run.
type Options struct {
	// Target is the ADS server's address, host:port. Required.
	Target string
	// DialOptions are passed to grpc.NewClient for every connection: the
	// transport credentials belong here. Nil means none, which grpc refuses
	// (Run returns the error); tests pass insecure credentials.
	DialOptions []grpc.DialOption
	// Node identifies the proxy; it is sent on the first request of every
	// stream. Nil sends an empty node, which Skein's server refuses.
	Node *corev3.Node
	// Token returns the bearer token, read again on every (re)connect because
	// projected service-account tokens rotate; it is sent as
	// "authorization: Bearer <token>" metadata (surrounding white space
	// trimmed). Nil, or an empty token, sends no authorization. An error
	// fails the attempt, which is retried with backoff.
	Token func() (string, error)
	// Metadata is sent on every stream (the bootstrap's initial_metadata).
	// An "authorization" entry is replaced by Token's when Token returns
	// one. Nil sends none.
	Metadata metadata.MD
	// Delta prefers incremental (delta) xDS. If the server answers a delta
	// stream with Unimplemented before sending anything, the client uses
	// state of the world for the rest of Run. False uses state of the world.
	Delta bool
	// Types are the type URLs to subscribe to, in this order, all as
	// wildcards. Empty means DefaultTypes. Only types whose resources carry
	// their name in field 1 (all of Envoy's xDS resources do) can be used
	// with state of the world.
	Types []string
	// Backoff paces reconnects. The zero value means 500ms base, 30s max,
	// reset after a stream that lived 30s.
	Backoff Backoff
	// Logger receives the client's logs. Nil means slog.Default().
	Logger *slog.Logger
	// OnState, when not nil, is called with Connected when a stream's first
	// response arrives and with Disconnected when a connected stream ends,
	// from Run's goroutine.
	OnState func(State)
}

func (o Options) withDefaults() (Options, error) {
	if o.Target == "" {
		return o, errors.New("xdsclient: Options.Target is empty")
	}
	if len(o.Types) == 0 {
		o.Types = DefaultTypes
	}
	seen := map[string]bool{}
	for _, t := range o.Types {
		if t == "" || seen[t] {
			return o, errors.New("xdsclient: Options.Types has an empty or repeated type URL " + t)
		}
		seen[t] = true
	}
	o.Backoff = o.Backoff.withDefaults()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OnState == nil {
		o.OnState = func(State) {}
	}
	return o, nil
}

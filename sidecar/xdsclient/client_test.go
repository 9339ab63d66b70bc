package xdsclient

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

const waitFor = 10 * time.Second

// fastBackoff keeps reconnect tests short.
var fastBackoff = Backoff{Base: 50 * time.Millisecond, Max: 200 * time.Millisecond}

// TestAppliesAndACKsAllTypes: the handler gets the complete set of each of
// the four types and the server sees each type ACKed, with state of the
// world and delta, against go-control-plane's ADS-mode and plain caches.
func TestAppliesAndACKsAllTypes(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			srv := startServer(t, serverOpts{ads: p.ads})
			srv.set(snapshot(t, "v1", "l1", "l2"))
			rec := newRecorder()
			runClient(t, Options{Target: srv.addr, Delta: p.delta, OnState: rec.onState}, rec)

			want := map[string][]string{
				ClusterType: {"backend"}, EndpointType: {"backend"}, ListenerType: {"l1", "l2"}, RouteType: {"http"},
			}
			for typ, names := range want {
				eventually(t, waitFor, shortType(typ)+" applied", func() bool { return slices.Equal(rec.names(typ), names) })
				eventually(t, waitFor, shortType(typ)+" ACKed", func() bool { return srv.acked(typ, "v1") })
			}
			// The handler gets the resource as the server sent it.
			l := &listenerv3.Listener{}
			if err := rec.resource(ListenerType, "l2").UnmarshalTo(l); err != nil {
				t.Fatal(err)
			}
			if got := l.GetAddress().GetSocketAddress().GetPortValue(); got != 10001 {
				t.Errorf("listener l2 port = %d, want 10001", got)
			}
			if s, _ := rec.lastState(); s != Connected {
				t.Errorf("state = %v, want connected", s)
			}
			for _, r := range srv.seen() {
				if r.delta != p.delta {
					t.Errorf("server saw a delta=%v request from a delta=%v client", r.delta, p.delta)
				}
				if r.nack {
					t.Errorf("unexpected NACK of %s: %s", shortType(r.typeURL), r.errorDetail)
				}
			}

			// An update applies and is ACKed.
			srv.set(snapshot(t, "v2", "l1", "l3"))
			eventually(t, waitFor, "listeners of v2 applied", func() bool {
				return slices.Equal(rec.names(ListenerType), []string{"l1", "l3"})
			})
			eventually(t, waitFor, "v2 listeners ACKed", func() bool { return srv.acked(ListenerType, "v2") })
		})
	}
}

// TestNACKKeepsPreviousSet: a listener the handler refuses is NACKed with
// the handler's message (naming the resource and field), the previous set
// stays applied, and the next good version applies.
func TestNACKKeepsPreviousSet(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			srv := startServer(t, serverOpts{ads: p.ads})
			srv.set(snapshot(t, "v1", "l1"))
			rec := newRecorder()
			runClient(t, Options{Target: srv.addr, Delta: p.delta, Backoff: Backoff{Base: 100 * time.Millisecond}}, rec)
			eventually(t, waitFor, "v1 ACKed", func() bool { return srv.acked(ListenerType, "v1") })

			srv.set(snapshot(t, "v2", "l1", "bad-l2"))
			eventually(t, waitFor, "v2 NACKed", func() bool { return len(srv.nacks(ListenerType)) > 0 })
			nack := srv.nacks(ListenerType)[0]
			for _, want := range []string{`listener "bad-l2"`, "address.socket_address.port_value", "is taken"} {
				if !strings.Contains(nack.errorDetail, want) {
					t.Errorf("NACK message %q does not contain %q", nack.errorDetail, want)
				}
			}
			if !p.delta && nack.version != "v1" {
				t.Errorf("NACK version_info = %q, want the last applied, v1", nack.version)
			}
			if got := rec.names(ListenerType); !slices.Equal(got, []string{"l1"}) {
				t.Errorf("applied listeners after the NACK = %v, want v1's [l1]", got)
			}

			if !p.delta {
				// go-control-plane answers each NACK with the rejected version
				// again at once; the client slows the repeats down.
				time.Sleep(time.Second)
				if n := len(srv.nacks(ListenerType)); n > 8 {
					t.Errorf("%d NACKs of one version within a second; the client loops with the server", n)
				}
			}

			srv.set(snapshot(t, "v3", "l1", "l3"))
			eventually(t, waitFor, "v3 applied", func() bool {
				return slices.Equal(rec.names(ListenerType), []string{"l1", "l3"})
			})
			eventually(t, waitFor, "v3 ACKed", func() bool { return srv.acked(ListenerType, "v3") })
			// Only listeners were refused; the other types were not touched.
			for _, a := range rec.applies() {
				if a.typeURL == ClusterType && !slices.Equal(a.names, []string{"backend"}) {
					t.Errorf("clusters applied as %v", a.names)
				}
			}
		})
	}
}

// TestKeepsConfigWhileServerIsAway: when the server stops, the handler is
// not called (no empty sets) and the state goes disconnected; a new server
// on the same address with a newer snapshot is reconnected to and applied,
// and unchanged types are not applied again.
func TestKeepsConfigWhileServerIsAway(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			srv := startServer(t, serverOpts{ads: p.ads})
			srv.set(snapshot(t, "v1", "l1"))
			rec := newRecorder()
			runClient(t, Options{Target: srv.addr, Delta: p.delta, Backoff: fastBackoff, OnState: rec.onState}, rec)
			for _, typ := range DefaultTypes {
				eventually(t, waitFor, shortType(typ)+" ACKed", func() bool { return srv.acked(typ, "v1") })
			}
			before := len(rec.applies())

			srv.grpc.Stop()
			eventually(t, waitFor, "disconnected", func() bool { s, _ := rec.lastState(); return s == Disconnected })
			time.Sleep(500 * time.Millisecond) // several reconnect attempts
			if got := rec.applies(); len(got) != before {
				t.Fatalf("the handler was called while the server was away: %v", got[before:])
			}
			if got := rec.names(ListenerType); !slices.Equal(got, []string{"l1"}) {
				t.Fatalf("listeners while the server is away = %v, want [l1]", got)
			}

			srv2 := startServer(t, serverOpts{ads: p.ads, addr: srv.addr})
			// l1 is gone and l2 is new: the reconnect must remove as well as add.
			srv2.set(snapshot(t, "v2", "l2"))
			eventually(t, waitFor, "v2 applied after the restart", func() bool {
				return slices.Equal(rec.names(ListenerType), []string{"l2"})
			})
			eventually(t, waitFor, "v2 ACKed", func() bool { return srv2.acked(ListenerType, "v2") })
			eventually(t, waitFor, "connected again", func() bool { s, n := rec.lastState(); return s == Connected && n >= 3 })

			// Clusters, endpoints and routes did not change: not applied again.
			for _, a := range rec.applies()[before:] {
				if a.typeURL != ListenerType {
					t.Errorf("unchanged %s applied again after the reconnect", shortType(a.typeURL))
				}
			}
			if p.delta {
				// The reconnect told the new server what the proxy runs.
				var init map[string]string
				for _, r := range srv2.seen() {
					if r.typeURL == ListenerType && r.nonce == "" {
						init = r.initVersions
					}
				}
				if _, ok := init["l1"]; !ok || len(init) != 1 {
					t.Errorf("initial_resource_versions of listeners = %v, want v1's l1", init)
				}
			}
		})
	}
}

// TestTokenReadOnEveryConnect: the token is sent as bearer metadata and read
// again when the client reconnects, so a rotated token is used; the
// bootstrap's initial metadata goes along.
func TestTokenReadOnEveryConnect(t *testing.T) {
	srv := startServer(t, serverOpts{ads: true})
	srv.set(snapshot(t, "v1", "l1"))
	var token atomic.Value
	token.Store("token-1\n")
	rec := newRecorder()
	runClient(t, Options{
		Target: srv.addr, Delta: true, Backoff: fastBackoff,
		Token:    func() (string, error) { return token.Load().(string), nil },
		Metadata: map[string][]string{"x-skein-test": {"initial"}, "authorization": {"Bearer from-bootstrap"}},
	}, rec)
	eventually(t, waitFor, "v1 ACKed", func() bool { return srv.acked(ListenerType, "") })

	token.Store("token-2")
	srv.grpc.Stop()
	srv2 := startServer(t, serverOpts{ads: true, addr: srv.addr})
	srv2.set(snapshot(t, "v1", "l1"))
	eventually(t, waitFor, "a stream on the new server", func() bool { a, _ := srv2.streamsAuth(); return len(a) > 0 })

	auth1, extra1 := srv.streamsAuth()
	auth2, extra2 := srv2.streamsAuth()
	if !slices.Equal(auth1, []string{"Bearer token-1"}) || auth2[0] != "Bearer token-2" {
		t.Errorf("authorization per stream = %q then %q, want [Bearer token-1] then Bearer token-2", auth1, auth2)
	}
	if extra1[0] != "initial" || extra2[0] != "initial" {
		t.Errorf("initial metadata per stream = %q, %q", extra1, extra2)
	}
}

// TestNoTokenSendsNoAuthorization: an empty token sends no authorization.
func TestNoTokenSendsNoAuthorization(t *testing.T) {
	srv := startServer(t, serverOpts{ads: true})
	srv.set(snapshot(t, "v1", "l1"))
	runClient(t, Options{Target: srv.addr, Token: func() (string, error) { return "", nil }}, newRecorder())
	eventually(t, waitFor, "v1 ACKed", func() bool { return srv.acked(ListenerType, "v1") })
	if auth, _ := srv.streamsAuth(); auth[0] != "" {
		t.Errorf("authorization = %q, want none", auth[0])
	}
}

// TestDeltaFallsBackToSotW: a server without delta xDS is used with state
// of the world.
func TestDeltaFallsBackToSotW(t *testing.T) {
	srv := startServer(t, serverOpts{ads: true, noDelta: true})
	srv.set(snapshot(t, "v1", "l1"))
	rec := newRecorder()
	runClient(t, Options{Target: srv.addr, Delta: true, Backoff: Backoff{Base: time.Hour}}, rec)
	for _, typ := range DefaultTypes {
		eventually(t, waitFor, shortType(typ)+" ACKed over state of the world", func() bool { return srv.acked(typ, "v1") })
	}
	if got := rec.names(ListenerType); !slices.Equal(got, []string{"l1"}) {
		t.Errorf("listeners = %v, want [l1]", got)
	}
}

// TestRunReturnsWhenContextEnds, also while waiting to reconnect; invalid
// options are errors.
func TestRunReturnsWhenContextEnds(t *testing.T) {
	if err := Run(context.Background(), Options{}, newRecorder()); err == nil {
		t.Error("Run without a Target: no error")
	}
	if err := Run(context.Background(), Options{Target: "127.0.0.1:1"}, nil); err == nil {
		t.Error("Run without a Handler: no error")
	}
	if err := Run(context.Background(), Options{Target: "127.0.0.1:1"}, newRecorder()); err == nil {
		t.Error("Run without transport credentials: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// Port 1 on loopback refuses: the client is in its backoff wait.
	go func() {
		done <- Run(ctx, Options{
			Target:      "127.0.0.1:1",
			DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
			Backoff:     Backoff{Base: time.Hour},
		}, newRecorder())
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestResourceName(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  proto.Message
		want string
	}{
		{"listener", snapshotResource(t, ListenerType, "l1"), "l1"},
		{"cluster", snapshotResource(t, ClusterType, "backend"), "backend"},
		{"endpoints", snapshotResource(t, EndpointType, "backend"), "backend"},
		{"route", snapshotResource(t, RouteType, "http"), "http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resourceName(marshal(t, tc.msg).GetValue())
			if err != nil || got != tc.want {
				t.Errorf("resourceName = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := resourceName([]byte{0x0a, 0x05, 'a'}); err == nil {
		t.Error("truncated resource: no error")
	}
}

func snapshotResource(t *testing.T, typ, name string) proto.Message {
	t.Helper()
	for n, r := range snapshot(t, "v", "l1").GetResources(typ) {
		if n == name {
			return r
		}
	}
	t.Fatalf("no %s %s", typ, name)
	return nil
}

func TestBackoff(t *testing.T) {
	b := Backoff{}.withDefaults()
	for _, tc := range []struct {
		name string
		n    int           // retry number, from 0
		want time.Duration // ceiling
	}{
		{"first", 0, 500 * time.Millisecond},
		{"second", 1, time.Second},
		{"capped", 10, 30 * time.Second},
		{"far beyond the cap", 1000, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.ceiling(tc.n); got != tc.want {
				t.Errorf("ceiling(%d) = %v, want %v", tc.n, got, tc.want)
			}
			distinct := map[time.Duration]bool{}
			for range 100 {
				w := b.wait(tc.n)
				if w <= 0 || w > tc.want {
					t.Fatalf("wait(%d) = %v, want in (0, %v]", tc.n, w, tc.want)
				}
				distinct[w] = true
			}
			if len(distinct) < 50 {
				t.Errorf("wait(%d) took only %d distinct values in 100: no jitter", tc.n, len(distinct))
			}
		})
	}
}

// TestReconnectBacksOff: against an address that accepts and drops every
// connection, attempts are paced by the backoff, not a tight loop, and
// keep coming.
func TestReconnectBacksOff(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	runClient(t, Options{Target: lis.Addr().String(), Backoff: Backoff{Base: 100 * time.Millisecond, Max: 100 * time.Millisecond}}, newRecorder())
	time.Sleep(time.Second)
	// Waits average 50ms: about 20 attempts in a second.
	if n := accepted.Load(); n < 3 || n > 60 {
		t.Errorf("%d connection attempts in a second with waits of up to 100ms", n)
	}
}

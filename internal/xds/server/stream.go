package server

import (
	"context"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skeinmesh/skein/internal/mesh"
)

// streamKey names a stream: go-control-plane numbers state-of-the-world
// and delta streams separately.
type streamKey struct {
	delta bool
	id    int64
}

// streamState is one open stream. Only its stream's goroutine touches it.
type streamState struct {
	ctx      context.Context
	identity Identity
	// proxy is the proxy the stream's node ID names; nil until its first request.
	proxy *proxyState
	// sotw and delta hold, by type URL, the last response sent on the
	// stream (one of the two maps is used).
	sotw, delta map[string]sentResponse
}

// sentResponse is a response sent on a stream, which a request ACKs or
// NACKs by its nonce.
type sentResponse struct {
	nonce, version string
}

func (s *Server) stream(k streamKey) *streamState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[k]
}

// openStream authenticates a new stream by its token.
func (s *Server) openStream(ctx context.Context, k streamKey) error {
	id, err := s.authenticate(ctx)
	if err != nil {
		return err
	}
	st := &streamState{ctx: ctx, identity: id, sotw: map[string]sentResponse{}, delta: map[string]sentResponse{}}
	s.mu.Lock()
	s.streams[k] = st
	s.mu.Unlock()
	return nil
}

// authenticate returns the identity of the token in ctx's metadata; with no
// Authenticator, the zero Identity.
func (s *Server) authenticate(ctx context.Context) (Identity, error) {
	if s.auth == nil {
		return Identity{}, nil
	}
	token, err := bearerToken(ctx)
	if err != nil {
		s.refuse(reasonUnauthenticated, err)
		return Identity{}, err
	}
	id, err := s.auth.Authenticate(ctx, token)
	if err != nil {
		if _, ok := status.FromError(err); !ok {
			// An Authenticator that does not say why refuses.
			err = status.Errorf(codes.Unauthenticated, "authenticate: %v", err)
		}
		reason := reasonUnauthenticated
		if status.Code(err) != codes.Unauthenticated {
			reason = reasonAuthUnavailable
		}
		s.refuse(reason, err)
		return Identity{}, err
	}
	return id, nil
}

// authorizeNode parses node's ID and checks it against the identity.
func (s *Server) authorizeNode(id Identity, node *core.Node) (mesh.Proxy, error) {
	if node.GetId() == "" {
		err := status.Errorf(codes.InvalidArgument, "the stream's first request has no node id; expected %s", nodeIDForm)
		s.refuse(reasonInvalidNode, err)
		return mesh.Proxy{}, err
	}
	p, err := ParseNodeID(node.GetId())
	if err != nil {
		s.refuse(reasonInvalidNode, err)
		return mesh.Proxy{}, err
	}
	if s.auth != nil {
		if err := authorize(id, p); err != nil {
			s.refuse(reasonPermissionDenied, err)
			return mesh.Proxy{}, err
		}
	}
	return p, nil
}

func (s *Server) refuse(reason string, err error) {
	s.metrics.rejectedStreams.WithLabelValues(reason).Inc()
	s.log.Info("Refused an xDS stream", "reason", reason, "error", err.Error())
}

// attach binds a stream to the proxy its node ID names, on its first
// request. A proxy's first stream generates and publishes its config before
// the request is answered.
func (s *Server) attach(st *streamState, node *core.Node) error {
	if st.proxy != nil {
		if id := node.GetId(); id != "" && id != st.proxy.proxy.ID {
			err := status.Errorf(codes.PermissionDenied, "node id changed on the stream from %q to %q", st.proxy.proxy.ID, id)
			s.refuse(reasonPermissionDenied, err)
			return err
		}
		return nil
	}
	p, err := s.authorizeNode(st.identity, node)
	if err != nil {
		return err
	}
	s.mu.Lock()
	ps := s.proxies[p.ID]
	created := ps == nil
	if created {
		ps = newProxyState(p)
		s.proxies[p.ID] = ps
		s.metrics.connected.Set(float64(len(s.proxies)))
	}
	ps.streams++
	s.mu.Unlock()
	st.proxy = ps

	ps.mu.Lock()
	unpublished := ps.versions == nil
	ps.mu.Unlock()
	if created {
		s.log.V(1).Info("proxy connected", "proxy", p.ID)
		s.notify()
	}
	if unpublished {
		select {
		case s.slots <- struct{}{}:
		case <-st.ctx.Done():
			return status.FromContextError(st.ctx.Err()).Err()
		}
		s.update(st.ctx, ps, time.Time{})
		<-s.slots
	}
	return nil
}

// closeStream forgets a stream; when it was its proxy's last, it forgets
// the proxy and clears its snapshot.
func (s *Server) closeStream(k streamKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[k]
	delete(s.streams, k)
	if st == nil || st.proxy == nil {
		return
	}
	ps := st.proxy
	if ps.streams--; ps.streams > 0 {
		return
	}
	delete(s.proxies, ps.proxy.ID)
	s.metrics.connected.Set(float64(len(s.proxies)))
	ps.mu.Lock()
	ps.closed = true
	s.index.remove(ps, ps.sources)
	ps.mu.Unlock()
	// Under s.mu, so that a reconnect of the same node cannot publish its
	// snapshot before this clears the old one.
	s.cache.ClearSnapshot(ps.proxy.ID)
	s.log.V(1).Info("proxy disconnected", "proxy", ps.proxy.ID)
	s.notify()
}

// observeRequest records what a request says about the stream's last
// response of its type: an initial request subscribes the proxy to the
// type; a request carrying the last response's nonce ACKs its version, or
// NACKs it when it has an error detail. Requests with stale nonces say
// nothing.
func (s *Server) observeRequest(st *streamState, sent map[string]sentResponse, typeURL, nonce, nackMessage string, nack bool) {
	ps := st.proxy
	var last sentResponse
	if nonce != "" {
		var ok bool
		if last, ok = sent[typeURL]; !ok || last.nonce != nonce {
			return
		}
	}
	var pushed time.Duration
	ps.mu.Lock()
	ts := ps.typeLocked(typeURL)
	switch {
	case nonce == "":
	case nack:
		ts.nackVersion, ts.nackMessage = last.version, nackMessage
	default:
		ts.acked = last.version
	}
	changed := ps.recomputeLocked()
	if ps.synced && !ps.pushStart.IsZero() {
		pushed = time.Since(ps.pushStart)
		ps.pushStart = time.Time{}
	}
	ps.mu.Unlock()

	if nack {
		s.metrics.nacks.WithLabelValues(shortType(typeURL)).Inc()
		s.log.Info("Proxy rejected its config", "proxy", ps.proxy.ID, "type", shortType(typeURL), "version", last.version, "detail", nackMessage)
	}
	if pushed > 0 {
		s.metrics.pushSeconds.Observe(pushed.Seconds())
	}
	if changed {
		s.notify()
	}
}

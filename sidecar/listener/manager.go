package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/skeinmesh/skein/sidecar/capture"
)

// Config configures a Manager.
type Config struct {
	// Dialer connects tcp_proxy's clusters and the passthrough of
	// connections that detection found not to be HTTP. Required.
	Dialer Dialer
	// Filters maps network filters' typed_config type URLs to their
	// factories (the HCM's, RBAC's), besides tcp_proxy's, which is built
	// in; an entry for TCPProxyType replaces it. nil: tcp_proxy only.
	Filters map[string]FilterFactory
	// DetectTimeout is how long a use_original_dst listener waits for a
	// connection's first bytes on an HCM chain before passing it through;
	// 0 means DefaultDetectTimeout (150 ms).
	DetectTimeout time.Duration
	// PassthroughCluster is the cluster a connection goes to when
	// detection finds no HTTP; "" means "PassthroughCluster" (the control
	// plane's ORIGINAL_DST cluster). Unused when Fallback is set.
	PassthroughCluster string
	// Fallback serves connections of HCM chains that detection found not
	// to be HTTP (info.Protocol says what they were); nil means a tcp_proxy
	// to PassthroughCluster with the default idle timeout.
	Fallback ConnHandler
	// OnError is told why a connection was dropped; nil drops the reason.
	OnError func(error)
}

// Manager owns the proxy's listening sockets and serves their connections
// with the listeners' compiled filter chains. Its methods are safe for
// concurrent use.
type Manager struct {
	filters  map[string]FilterFactory
	detect   time.Duration
	fallback ConnHandler
	onError  func(error)
	origDst  func(*net.TCPConn) (netip.AddrPort, error) // capture.OriginalDst; tests replace it

	ctx    context.Context // ends at the drain deadline
	cancel context.CancelFunc

	mu      sync.Mutex
	sockets map[socketKey]*socket
	stats   map[string]*ListenerStats
	stopped bool

	connMu sync.Mutex
	conns  map[*net.TCPConn]struct{}
	wg     sync.WaitGroup
}

// socketKey identifies a listening socket. A listener on port 0 (a free
// port, in tests) keeps its socket by name.
type socketKey struct {
	network string
	addr    netip.AddrPort
	name    string // port 0 only
}

func keyOf(l *Listener) socketKey {
	k := socketKey{network: l.network, addr: l.Address}
	if l.Address.Port() == 0 {
		k.name = l.Name
	}
	return k
}

// socket is a bound listening socket and the config its new connections
// get.
type socket struct {
	ln   *net.TCPListener
	gen  atomic.Pointer[generation]
	done chan struct{} // closed when the accept loop has returned
}

// generation is one applied config of a socket: a connection keeps the one
// it was accepted with.
type generation struct {
	l      *Listener
	stats  *ListenerStats
	chains map[*FilterChain]*atomic.Uint64
}

// NewManager returns a Manager with no listeners.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Dialer == nil {
		return nil, errors.New("listener manager: Config.Dialer is required")
	}
	m := &Manager{
		filters:  map[string]FilterFactory{TCPProxyType: NewTCPProxyFactory(cfg.Dialer, cfg.OnError)},
		detect:   cfg.DetectTimeout,
		fallback: cfg.Fallback,
		onError:  cfg.OnError,
		origDst:  capture.OriginalDst,
		sockets:  map[socketKey]*socket{},
		stats:    map[string]*ListenerStats{},
		conns:    map[*net.TCPConn]struct{}{},
	}
	for url, f := range cfg.Filters {
		m.filters[url] = f
	}
	if m.detect <= 0 {
		m.detect = DefaultDetectTimeout
	}
	if m.fallback == nil {
		cluster := cfg.PassthroughCluster
		if cluster == "" {
			cluster = "PassthroughCluster"
		}
		m.fallback = &TCPProxy{Clusters: []string{cluster}, Weights: []uint32{1}, total: 1,
			IdleTimeout: DefaultTCPIdleTimeout, MaxConnectAttempts: 1, Dialer: cfg.Dialer, OnError: cfg.OnError}
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Update replaces the listeners with ls. It compiles every listener and
// binds every new address first; if any of that fails it changes nothing
// and returns the error. Then it applies: a listener whose address is
// unchanged keeps its socket and serves its new connections with the new
// chains (a connection keeps the chains it was accepted with); a new
// address is served; a socket no listener has any more is closed, its
// connections going on until they end (Drain waits for them). Listeners
// with an api_listener are skipped.
//
// Moving a listener to another address of the same port (0.0.0.0:80 to
// 127.0.0.1:80) fails to bind while the old socket is open: remove it in
// one update, add it in the next.
func (m *Manager) Update(ls []*listenerv3.Listener) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return errors.New("listener manager: stopped accepting")
	}
	var compiled []*Listener
	names := map[string]bool{}
	keys := map[socketKey]string{}
	for i, l := range ls {
		if l.GetApiListener() != nil {
			continue
		}
		c, err := Compile(l, m.filters)
		if err != nil {
			if l.GetName() == "" {
				return fmt.Errorf("listeners[%d]: %w", i, err)
			}
			return err
		}
		if names[c.Name] {
			return fmt.Errorf("listener %q: defined twice", c.Name)
		}
		names[c.Name] = true
		k := keyOf(c)
		if other, ok := keys[k]; ok {
			return fmt.Errorf("listener %q: address: %s is listener %q's too", c.Name, c.Address, other)
		}
		keys[k] = c.Name
		compiled = append(compiled, c)
	}

	bound := map[socketKey]*net.TCPListener{}
	for _, c := range compiled {
		k := keyOf(c)
		if _, ok := m.sockets[k]; ok {
			continue
		}
		var lc net.ListenConfig
		ln, err := lc.Listen(context.Background(), c.network, c.Address.String())
		if err != nil {
			for _, b := range bound {
				_ = b.Close()
			}
			return fmt.Errorf("listener %q: address.socket_address: %w", c.Name, err)
		}
		bound[k] = ln.(*net.TCPListener)
	}

	for _, c := range compiled {
		st := m.stats[c.Name]
		if st == nil {
			st = &ListenerStats{}
			m.stats[c.Name] = st
		}
		gen := &generation{l: c, stats: st, chains: make(map[*FilterChain]*atomic.Uint64, len(c.Chains))}
		for _, ch := range c.Chains {
			gen.chains[ch] = st.chain(ch.statName())
		}
		k := keyOf(c)
		if s, ok := m.sockets[k]; ok {
			s.gen.Store(gen)
			continue
		}
		s := &socket{ln: bound[k], done: make(chan struct{})}
		s.gen.Store(gen)
		m.sockets[k] = s
		go m.accept(s)
	}
	for k, s := range m.sockets {
		if _, ok := keys[k]; !ok {
			_ = s.ln.Close()
			delete(m.sockets, k)
		}
	}
	for name := range m.stats {
		if !names[name] {
			delete(m.stats, name)
		}
	}
	return nil
}

// Addr returns the address the listener named name is bound to, or nil.
func (m *Manager) Addr(name string) net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.sockets {
		if s.gen.Load().l.Name == name {
			return s.ln.Addr()
		}
	}
	return nil
}

// Stats returns the counters of the current listeners by name; the
// values are live.
func (m *Manager) Stats() map[string]*ListenerStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*ListenerStats, len(m.stats))
	for name, s := range m.stats {
		out[name] = s
	}
	return out
}

// StopAccepting closes every listening socket and returns once none
// accepts any more; connections in flight go on. Update fails afterwards.
func (m *Manager) StopAccepting() {
	m.mu.Lock()
	m.stopped = true
	socks := m.sockets
	m.sockets = map[socketKey]*socket{}
	m.mu.Unlock()
	for _, s := range socks {
		_ = s.ln.Close()
		<-s.done
	}
}

// Drain stops accepting, then waits until every connection has ended, or
// until ctx ends: then it closes the connections left (their handlers'
// contexts end too), waits for their handlers, and returns ctx's error.
// SIGTERM's drain calls it with the drain deadline.
func (m *Manager) Drain(ctx context.Context) error {
	m.StopAccepting()
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		m.cancel()
		m.connMu.Lock()
		for c := range m.conns {
			_ = c.Close()
		}
		m.connMu.Unlock()
		<-done
		return ctx.Err()
	}
}

// Close stops accepting and closes every connection at once.
func (m *Manager) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = m.Drain(ctx)
	return nil
}

// accept serves s until its socket is closed.
func (m *Manager) accept(s *socket) {
	defer close(s.done)
	var delay time.Duration
	for {
		c, err := s.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as
			// net/http does, rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		gen := s.gen.Load()
		gen.stats.Accepted.Add(1)
		gen.stats.Active.Add(1)
		m.connMu.Lock()
		m.conns[c] = struct{}{}
		m.connMu.Unlock()
		m.wg.Add(1)
		go m.serve(c, gen)
	}
}

// serve chooses c's filter chain and runs it.
func (m *Manager) serve(c *net.TCPConn, gen *generation) {
	defer func() {
		_ = c.Close()
		m.connMu.Lock()
		delete(m.conns, c)
		m.connMu.Unlock()
		gen.stats.Active.Add(-1)
		m.wg.Done()
	}()
	l := gen.l
	info := &ConnInfo{
		Listener:  l.Name,
		Direction: l.Direction,
		Source:    addrPortOf(c.RemoteAddr()),
		Local:     addrPortOf(c.LocalAddr()),
	}
	info.Destination = info.Local
	if l.UseOriginalDst {
		if dst, err := m.origDst(c); err == nil {
			info.Destination = unmap(dst)
		}
		if info.Destination == info.Local {
			// Not redirected: addressed to the listener itself, which
			// passing it through would loop back to.
			gen.stats.Looped.Add(1)
			m.report(l, info, "addressed to the listener itself, refused")
			return
		}
	}
	chain := l.Match(info.Source, info.Destination)
	if chain == nil {
		gen.stats.NoChain.Add(1)
		m.report(l, info, "no filter chain matches")
		return
	}
	gen.chains[chain].Add(1)
	info.Chain = chain.Name
	if !chain.Detect {
		chain.handler.ServeConn(m.ctx, c, info)
		return
	}
	timeout := m.detect
	if !l.UseOriginalDst {
		timeout = PlainDetectTimeout
	}
	p, rc, ok := detect(c, timeout)
	if !ok {
		return
	}
	info.Protocol = p
	if !p.IsHTTP() {
		if l.UseOriginalDst {
			gen.stats.DetectFallback.Add(1)
			m.fallback.ServeConn(m.ctx, rc, info)
			return
		}
		if p == ProtocolUnknown { // silent, and nowhere to pass it
			return
		}
		info.Protocol = ProtocolHTTP1 // for the HCM to answer
	}
	if info.Protocol == ProtocolHTTP2 {
		gen.stats.HTTP2.Add(1)
	} else {
		gen.stats.HTTP1.Add(1)
	}
	chain.handler.ServeConn(m.ctx, rc, info)
}

func (m *Manager) report(l *Listener, info *ConnInfo, why string) {
	if m.onError != nil {
		m.onError(fmt.Errorf("listener %q: connection from %s to %s: %s", l.Name, info.Source, info.Destination, why))
	}
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// addrPortOf returns a TCP address as an unmapped AddrPort; the zero one
// for anything else.
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok && ta != nil {
		return unmap(ta.AddrPort())
	}
	return netip.AddrPort{}
}

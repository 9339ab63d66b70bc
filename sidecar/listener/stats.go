package listener

import (
	"strconv"
	"sync"
	"sync/atomic"
)

// ListenerStats are one listener's counters, kept by name across updates
// (a listener that is removed and added again starts from zero). The
// fields are live atomics: the stats helper reads them with Load, nothing
// else writes them. Counters only grow; Active goes up and down.
type ListenerStats struct {
	// Accepted counts connections accepted (downstream_cx_total).
	Accepted atomic.Uint64
	// Active is the number of connections open now (downstream_cx_active),
	// including those accepted under an earlier config of the listener.
	Active atomic.Int64
	// NoChain counts connections closed because no filter chain matched
	// and there is no default chain (no_filter_chain_match).
	NoChain atomic.Uint64
	// Looped counts connections closed because a use_original_dst
	// listener received one addressed to itself: passing it through would
	// loop back to it.
	Looped atomic.Uint64
	// HTTP1, HTTP2 count connections of HCM chains that detection found to
	// be HTTP/1 and HTTP/2.
	HTTP1, HTTP2 atomic.Uint64
	// DetectFallback counts connections of HCM chains passed through
	// because detection found no HTTP: TLS, other bytes, or silence.
	DetectFallback atomic.Uint64

	mu     sync.Mutex
	chains map[string]*atomic.Uint64
}

// Chains returns how many connections each filter chain got, by the
// chain's name ("filter_chains[i]" or "default_filter_chain" for an
// unnamed one).
func (s *ListenerStats) Chains() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.chains))
	for name, n := range s.chains {
		out[name] = n.Load()
	}
	return out
}

// chain returns the counter of the chain named name, creating it.
func (s *ListenerStats) chain(name string) *atomic.Uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chains == nil {
		s.chains = map[string]*atomic.Uint64{}
	}
	n, ok := s.chains[name]
	if !ok {
		n = new(atomic.Uint64)
		s.chains[name] = n
	}
	return n
}

// statName is the name a chain's counter is kept under.
func (c *FilterChain) statName() string {
	switch {
	case c.Name != "":
		return c.Name
	case c.Index < 0:
		return "default_filter_chain"
	default:
		return "filter_chains[" + strconv.Itoa(c.Index) + "]"
	}
}

package listener

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ErrAPIListener is Compile's answer for a listener with an api_listener:
// it is meant for proxyless gRPC clients, and a proxy skips it (Manager
// does) rather than refusing it.
var ErrAPIListener = errors.New("api_listener: meant for proxyless gRPC clients, not a proxy")

// Listener is a compiled listener: immutable, shared by every connection it
// accepted.
type Listener struct {
	// Name is the listener's name.
	Name string
	// Address is the address it binds (port 0: a free port).
	Address netip.AddrPort
	// UseOriginalDst: chains are chosen by the connection's original
	// destination (SO_ORIGINAL_DST) rather than the address it arrived at.
	UseOriginalDst bool
	// Direction is traffic_direction (UNSPECIFIED when unset).
	Direction corev3.TrafficDirection
	// Chains are filter_chains in order, then default_filter_chain if set.
	Chains []*FilterChain

	network      string // "tcp4", "tcp6" (IPv6 only) or "tcp" (dual-stack)
	root         node
	defaultChain *FilterChain
}

// FilterChain is one compiled filter chain.
type FilterChain struct {
	// Name is the chain's name ("" when unnamed).
	Name string
	// Index is its position in filter_chains; -1 for default_filter_chain.
	Index int
	// Detect: the chain ends in the HCM, so the protocol is detected from
	// the first bytes before it runs, and a connection that is not HTTP
	// goes to the passthrough instead.
	Detect bool

	handler ConnHandler // the network filters, each wrapping the next, then the terminal one
}

// Match returns the chain for a connection from src to dst (dst is the
// original destination on a use_original_dst listener), or nil when no
// chain matches and there is no default chain. It does not allocate.
func (l *Listener) Match(src, dst netip.AddrPort) *FilterChain {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if c := l.root.lookup(src, dst); c != nil {
		return c
	}
	return l.defaultChain
}

// sameSocket reports whether l binds the same socket as o.
func (l *Listener) sameSocket(o *Listener) bool {
	return l.network == o.network && l.Address == o.Address
}

// fieldError is a compile error at a field path.
type fieldError struct {
	path string
	err  error
}

func (e *fieldError) Error() string { return e.path + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

func fieldErr(path, format string, args ...any) error {
	return &fieldError{path: path, err: fmt.Errorf(format, args...)}
}

func at(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func dot(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// onlyFields refuses any field of m that is set and not in allowed: a field
// this proxy does not know may change behaviour, so it is never ignored
// silently. Allowed fields are either implemented or documented as ignored.
func onlyFields(m proto.Message, path string, allowed ...string) error {
	var bad []protoreflect.FieldDescriptor
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !slices.Contains(allowed, string(fd.Name())) {
			bad = append(bad, fd)
		}
		return true
	})
	if len(bad) == 0 {
		return nil
	}
	slices.SortFunc(bad, func(a, b protoreflect.FieldDescriptor) int { return int(a.Number() - b.Number()) })
	return fieldErr(dot(path, string(bad[0].Name())), "not supported by skein-proxy")
}

// Listener fields that are accepted and ignored: they tune Envoy's
// internals (buffers, balancing, backlog, accept batching, overload and
// connection limits) or are observability (stat_prefix, metadata,
// access_log, stats_matcher); listener_filters_timeout and its continue
// flag have no listener filter to apply to. drain_type is ignored: a
// removed listener always stops accepting and lets its connections finish.
var listenerFields = []string{
	"name", "address", "filter_chains", "default_filter_chain", "use_original_dst", "traffic_direction",
	"transparent", "freebind", "bind_to_port", "api_listener",
	"stat_prefix", "stats_matcher", "metadata", "access_log", "drain_type",
	"per_connection_buffer_limit_bytes", "per_connection_buffer_high_watermark_timeout",
	"listener_filters_timeout", "continue_on_listener_filters_timeout",
	"connection_balance_config", "reuse_port", "enable_reuse_port", "tcp_backlog_size",
	"max_connections_to_accept_per_socket_event", "ignore_global_conn_limit", "bypass_overload_manager",
	"tcp_fast_open_queue_length",
}

// Compile validates and compiles one listener; filters maps a network
// filter's typed_config type URL to its factory. Errors name the listener
// and the field: `listener "virtualOutbound":
// filter_chains[3].filter_chain_match.prefix_ranges[0]: ...`.
func Compile(l *listenerv3.Listener, filters map[string]FilterFactory) (*Listener, error) {
	c, err := compile(l, filters)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", l.GetName(), err)
	}
	return c, nil
}

func compile(l *listenerv3.Listener, filters map[string]FilterFactory) (*Listener, error) {
	if l.GetApiListener() != nil {
		return nil, ErrAPIListener
	}
	if l.GetName() == "" {
		return nil, fieldErr("name", "required")
	}
	if err := onlyFields(l, "", listenerFields...); err != nil {
		return nil, err
	}
	if l.GetTransparent().GetValue() {
		return nil, fieldErr("transparent", "IP_TRANSPARENT (TPROXY) is not supported: skein-init captures with REDIRECT")
	}
	if l.GetFreebind().GetValue() {
		return nil, fieldErr("freebind", "not supported")
	}
	if b := l.GetBindToPort(); b != nil && !b.GetValue() {
		return nil, fieldErr("bind_to_port", "false is not supported: every listener binds its address")
	}
	out := &Listener{
		Name:           l.GetName(),
		UseOriginalDst: l.GetUseOriginalDst().GetValue(),
		Direction:      l.GetTrafficDirection(),
	}
	var err error
	if out.network, out.Address, err = compileAddress(l.GetAddress(), "address"); err != nil {
		return nil, err
	}
	if len(l.GetFilterChains()) == 0 && l.GetDefaultFilterChain() == nil {
		return nil, fieldErr("filter_chains", "no filter chain and no default_filter_chain")
	}
	for i, fc := range l.GetFilterChains() {
		path := at("filter_chains", i)
		chain, err := compileChain(fc, i, path, filters)
		if err != nil {
			return nil, err
		}
		keys, err := matchKeys(fc.GetFilterChainMatch(), dot(path, "filter_chain_match"))
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if prev := out.root.insert(k, chain, i); prev >= 0 {
				return nil, fieldErr(dot(path, "filter_chain_match"), "matches the same connections as filter_chains[%d]", prev)
			}
		}
		out.Chains = append(out.Chains, chain)
	}
	if fc := l.GetDefaultFilterChain(); fc != nil {
		if fc.GetFilterChainMatch() != nil {
			return nil, fieldErr("default_filter_chain.filter_chain_match", "must be empty")
		}
		chain, err := compileChain(fc, -1, "default_filter_chain", filters)
		if err != nil {
			return nil, err
		}
		out.defaultChain = chain
		out.Chains = append(out.Chains, chain)
	}
	return out, nil
}

// compileAddress reads a socket_address: an IP literal and a port, TCP.
// "0.0.0.0" listens on IPv4 only, "::" on IPv6 only unless ipv4_compat, as
// in Envoy.
func compileAddress(a *corev3.Address, path string) (network string, ap netip.AddrPort, err error) {
	if a == nil {
		return "", ap, fieldErr(path, "required")
	}
	sa := a.GetSocketAddress()
	if sa == nil {
		return "", ap, fieldErr(path, "only socket_address is supported")
	}
	path = dot(path, "socket_address")
	if err := onlyFields(sa, path, "protocol", "address", "port_value", "ipv4_compat"); err != nil {
		return "", ap, err
	}
	if sa.GetProtocol() != corev3.SocketAddress_TCP {
		return "", ap, fieldErr(dot(path, "protocol"), "only TCP is supported")
	}
	ip, err := netip.ParseAddr(sa.GetAddress())
	if err != nil {
		return "", ap, fieldErr(dot(path, "address"), "not an IP address: %q", sa.GetAddress())
	}
	if ip.Zone() != "" {
		return "", ap, fieldErr(dot(path, "address"), "zones are not supported: %q", sa.GetAddress())
	}
	if sa.GetPortValue() > 65535 {
		return "", ap, fieldErr(dot(path, "port_value"), "%d is not a port", sa.GetPortValue())
	}
	ip = ip.Unmap()
	network = "tcp4"
	if ip.Is6() {
		network = "tcp6"
		if sa.GetIpv4Compat() {
			network = "tcp"
		}
	}
	return network, netip.AddrPortFrom(ip, uint16(sa.GetPortValue())), nil
}

func compileChain(fc *listenerv3.FilterChain, index int, path string, factories map[string]FilterFactory) (*FilterChain, error) {
	if err := onlyFields(fc, path, "filter_chain_match", "filters", "name", "metadata", "transport_socket_connect_timeout"); err != nil {
		if fe := (*fieldError)(nil); errors.As(err, &fe) && fe.path == dot(path, "transport_socket") {
			return nil, fieldErr(fe.path, "not supported yet (TLS comes with the mTLS issue)")
		}
		return nil, err
	}
	fs := fc.GetFilters()
	if len(fs) == 0 {
		return nil, fieldErr(dot(path, "filters"), "empty: a chain needs a terminal filter (tcp_proxy or http_connection_manager)")
	}
	compiled := make([]Filter, len(fs))
	for i, f := range fs {
		fpath := at(dot(path, "filters"), i)
		if err := onlyFields(f, fpath, "name", "typed_config"); err != nil {
			return nil, err
		}
		if f.GetTypedConfig() == nil {
			return nil, fieldErr(dot(fpath, "typed_config"), "required (filter %q)", f.GetName())
		}
		url := f.GetTypedConfig().GetTypeUrl()
		factory := factories[url]
		if factory == nil {
			return nil, fieldErr(dot(fpath, "typed_config"), "filter %q: no network filter of type %s", f.GetName(), url)
		}
		cf, err := factory(f)
		if err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				return nil, fieldErr(dot(dot(fpath, "typed_config"), fe.path), "%w", fe.err)
			}
			return nil, fieldErr(dot(fpath, "typed_config"), "%w", err)
		}
		last := i == len(fs)-1
		switch {
		case (cf.Terminal == nil) == (cf.Network == nil):
			return nil, fieldErr(fpath, "filter %q: its factory must build a terminal filter or a network filter, exactly one", f.GetName())
		case last && cf.Terminal == nil:
			return nil, fieldErr(fpath, "filter %q is not terminal: the last filter of a chain must be (tcp_proxy or http_connection_manager)", f.GetName())
		case !last && cf.Terminal != nil:
			return nil, fieldErr(fpath, "filter %q is terminal: it must be the chain's last filter", f.GetName())
		}
		compiled[i] = cf
	}
	h := compiled[len(compiled)-1].Terminal
	for i := len(compiled) - 2; i >= 0; i-- {
		h = compiled[i].Network.Wrap(h)
	}
	return &FilterChain{
		Name:    fc.GetName(),
		Index:   index,
		Detect:  fs[len(fs)-1].GetTypedConfig().GetTypeUrl() == HTTPConnectionManagerType,
		handler: h,
	}, nil
}

var (
	anyV4 = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	anyV6 = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
)

// matchKeys expands a filter_chain_match into every combination of its
// criteria.
func matchKeys(m *listenerv3.FilterChainMatch, path string) ([]matchKey, error) {
	if m != nil {
		if err := onlyFields(m, path, "destination_port", "prefix_ranges", "direct_source_prefix_ranges",
			"source_type", "source_prefix_ranges", "source_ports"); err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				switch fe.path {
				case dot(path, "server_names"), dot(path, "transport_protocol"), dot(path, "application_protocols"):
					return nil, fieldErr(fe.path, "not supported yet: it needs TLS inspection, which comes with the mTLS issue")
				}
			}
			return nil, err
		}
	}
	var port uint16
	if p := m.GetDestinationPort(); p != nil {
		if p.GetValue() < 1 || p.GetValue() > 65535 {
			return nil, fieldErr(dot(path, "destination_port"), "%d is not a port", p.GetValue())
		}
		port = uint16(p.GetValue())
	}
	dst, err := prefixes(m.GetPrefixRanges(), dot(path, "prefix_ranges"))
	if err != nil {
		return nil, err
	}
	direct, err := prefixes(m.GetDirectSourcePrefixRanges(), dot(path, "direct_source_prefix_ranges"))
	if err != nil {
		return nil, err
	}
	src, err := prefixes(m.GetSourcePrefixRanges(), dot(path, "source_prefix_ranges"))
	if err != nil {
		return nil, err
	}
	var st sourceType
	switch m.GetSourceType() {
	case listenerv3.FilterChainMatch_ANY:
	case listenerv3.FilterChainMatch_SAME_IP_OR_LOOPBACK:
		st = sourceLocal
	case listenerv3.FilterChainMatch_EXTERNAL:
		st = sourceExternal
	default:
		return nil, fieldErr(dot(path, "source_type"), "unknown value %d", m.GetSourceType())
	}
	srcPorts := []uint16{0}
	if sp := m.GetSourcePorts(); len(sp) > 0 {
		srcPorts = srcPorts[:0]
		for i, p := range sp {
			if p < 1 || p > 65535 {
				return nil, fieldErr(at(dot(path, "source_ports"), i), "%d is not a port", p)
			}
			if slices.Contains(srcPorts, uint16(p)) {
				return nil, fieldErr(at(dot(path, "source_ports"), i), "%d is listed twice", p)
			}
			srcPorts = append(srcPorts, uint16(p))
		}
	}
	var keys []matchKey
	for _, d := range dst {
		for _, ds := range direct {
			for _, s := range src {
				for _, sp := range srcPorts {
					keys = append(keys, matchKey{dstPort: port, dstIP: d, directSrc: ds, srcType: st, srcIP: s, srcPort: sp})
				}
			}
		}
	}
	return keys, nil
}

// prefixes compiles CIDR ranges; none means any address of either family.
// Host bits are cleared and a missing prefix_len is 0, as in Envoy.
func prefixes(rs []*corev3.CidrRange, path string) ([]netip.Prefix, error) {
	if len(rs) == 0 {
		return []netip.Prefix{anyV4, anyV6}, nil
	}
	out := make([]netip.Prefix, 0, len(rs))
	for i, r := range rs {
		rpath := at(path, i)
		if err := onlyFields(r, rpath, "address_prefix", "prefix_len"); err != nil {
			return nil, err
		}
		ip, err := netip.ParseAddr(r.GetAddressPrefix())
		if err != nil || ip.Zone() != "" {
			return nil, fieldErr(dot(rpath, "address_prefix"), "not an IP address: %q", r.GetAddressPrefix())
		}
		ip = ip.Unmap()
		bits := int(r.GetPrefixLen().GetValue())
		if bits > ip.BitLen() {
			return nil, fieldErr(dot(rpath, "prefix_len"), "%d is longer than the address (%d bits)", bits, ip.BitLen())
		}
		p := netip.PrefixFrom(ip, bits).Masked()
		if slices.Contains(out, p) {
			return nil, fieldErr(rpath, "%s is listed twice", p)
		}
		out = append(out, p)
	}
	return out, nil
}

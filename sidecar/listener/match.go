package listener

import (
	"net/netip"
	"slices"
)

// The filter chain matcher follows Envoy's FilterChainMatch precedence: the
// criteria are looked at in the order destination port, destination IP,
// (server name, transport protocol, application protocols: refused for
// now), directly connected source IP, source type, source IP, source port.
// At each step only the chains that match most specifically go on (an
// exact port before no port, the longest prefix, LOCAL or EXTERNAL before
// ANY); a step that leaves none ends the match with no chain, and the
// default chain serves the connection. There is no backtracking: a chain
// with a longer destination prefix that then fails on its source port does
// not let a chain with a shorter prefix match instead (Envoy's rule).
//
// Compiled as a tree with one level per criterion, so that a lookup costs a
// map access per level (and per distinct prefix length on IP levels), does
// not allocate, and does not grow with the number of chains.

// node is one level of the tree. Which fields are used depends on the level.
type node struct {
	ports   map[uint16]*node // port levels: by port
	any     *node            // port and source-type levels: no requirement
	local   *node            // source-type level: SAME_IP_OR_LOOPBACK
	extern  *node            // source-type level: EXTERNAL
	ips     prefixTable      // IP levels
	chain   *FilterChain     // leaves
	chainAt int              // leaves: the chain's index, for duplicate errors
}

// prefixTable finds the longest prefix containing an address.
type prefixTable struct {
	byPrefix map[netip.Prefix]*node
	bits4    []int // distinct IPv4 prefix lengths, longest first
	bits6    []int // distinct IPv6 prefix lengths, longest first
}

func (t *prefixTable) lookup(a netip.Addr) *node {
	bits := t.bits6
	if a.Is4() {
		bits = t.bits4
	}
	for _, b := range bits {
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if n, ok := t.byPrefix[p]; ok {
			return n
		}
	}
	return nil
}

func (t *prefixTable) child(p netip.Prefix) *node {
	if t.byPrefix == nil {
		t.byPrefix = map[netip.Prefix]*node{}
	}
	if n, ok := t.byPrefix[p]; ok {
		return n
	}
	n := &node{}
	t.byPrefix[p] = n
	bits := &t.bits6
	if p.Addr().Is4() {
		bits = &t.bits4
	}
	if !slices.Contains(*bits, p.Bits()) {
		*bits = append(*bits, p.Bits())
		slices.SortFunc(*bits, func(a, b int) int { return b - a })
	}
	return n
}

func (n *node) port(p uint16) *node {
	if p == 0 {
		if n.any == nil {
			n.any = &node{}
		}
		return n.any
	}
	if n.ports == nil {
		n.ports = map[uint16]*node{}
	}
	c, ok := n.ports[p]
	if !ok {
		c = &node{}
		n.ports[p] = c
	}
	return c
}

func (n *node) lookupPort(p uint16) *node {
	if c, ok := n.ports[p]; ok {
		return c
	}
	return n.any
}

// sourceType is FilterChainMatch.source_type.
type sourceType uint8

const (
	sourceAny sourceType = iota
	sourceLocal
	sourceExternal
)

func (n *node) srcType(t sourceType) *node {
	slot := &n.any
	switch t {
	case sourceLocal:
		slot = &n.local
	case sourceExternal:
		slot = &n.extern
	}
	if *slot == nil {
		*slot = &node{}
	}
	return *slot
}

// lookupSrcType: a connection is local when its source is a loopback
// address or the destination's address (Envoy's SAME_IP_OR_LOOPBACK).
func (n *node) lookupSrcType(src, dst netip.Addr) *node {
	if src.IsLoopback() || src == dst {
		if n.local != nil {
			return n.local
		}
	} else if n.extern != nil {
		return n.extern
	}
	return n.any
}

// matchKey is one combination of a chain's criteria: a chain with several
// prefixes or source ports is inserted once per combination.
type matchKey struct {
	dstPort   uint16       // 0: any
	dstIP     netip.Prefix // every chain has one: no prefix_ranges is 0.0.0.0/0 and ::/0
	directSrc netip.Prefix
	srcType   sourceType
	srcIP     netip.Prefix
	srcPort   uint16 // 0: any
}

// insert adds chain under k and returns the index of the chain already
// there, or -1.
func (n *node) insert(k matchKey, chain *FilterChain, at int) int {
	leaf := n.port(k.dstPort).ips.child(k.dstIP).ips.child(k.directSrc).srcType(k.srcType).ips.child(k.srcIP).port(k.srcPort)
	if leaf.chain != nil {
		return leaf.chainAt
	}
	leaf.chain, leaf.chainAt = chain, at
	return -1
}

// lookup returns the chain for a connection from src to dst, or nil.
func (n *node) lookup(src, dst netip.AddrPort) *FilterChain {
	if n = n.lookupPort(dst.Port()); n == nil {
		return nil
	}
	if n = n.ips.lookup(dst.Addr()); n == nil {
		return nil
	}
	if n = n.ips.lookup(src.Addr()); n == nil { // directly connected source: the source without PROXY protocol
		return nil
	}
	if n = n.lookupSrcType(src.Addr(), dst.Addr()); n == nil {
		return nil
	}
	if n = n.ips.lookup(src.Addr()); n == nil {
		return nil
	}
	if n = n.lookupPort(src.Port()); n == nil {
		return nil
	}
	return n.chain
}

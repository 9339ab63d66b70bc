package router

import (
	"bytes"
)

// Table is a compiled RouteConfiguration: immutable, safe for concurrent
// use. A new configuration compiles into a new Table that replaces the
// old one whole.
type Table struct {
	// Name is the route configuration's name.
	Name string
	// ValidateClusters is validate_clusters: whether the configuration
	// asks that every cluster it names exist when it is accepted (the
	// assembly's check, since the router knows no clusters); false means
	// unknown clusters answer ClusterNotFoundStatus at request time.
	ValidateClusters bool

	vhosts     []*VirtualHost
	exact      map[string]*VirtualHost
	suffix     []wildcard // "*.foo.com" as ".foo.com", longest first
	prefix     []wildcard // "foo.*" as "foo.", longest first
	any        *VirtualHost
	ignorePort bool
}

type wildcard struct {
	s  string
	vh *VirtualHost
}

// VirtualHost is a compiled virtual host.
type VirtualHost struct {
	// Name is the virtual host's name.
	Name string
	// Domains are its domains, lower case, as configured.
	Domains []string
	// Routes are its routes, in the order they are tried.
	Routes []*Route
}

// VirtualHosts lists the table's virtual hosts in configuration order.
func (t *Table) VirtualHosts() []*VirtualHost { return t.vhosts }

// Route returns the route for r: the first route, in order, of the
// virtual host for r's authority whose match r satisfies; nil if there is
// none (the caller answers 404). It allocates nothing; a route that
// matches by regex may cost what Go's regexp costs.
func (t *Table) Route(r Request) *Route {
	vh := t.VirtualHost(r.Authority())
	if vh == nil {
		return nil
	}
	path := r.Path()
	for _, rt := range vh.Routes {
		if rt.match.match(r, path) {
			return rt
		}
	}
	return nil
}

// VirtualHost returns the virtual host for an authority, as Envoy picks
// it: an exact domain, then the longest suffix wildcard ("*.foo.com"),
// then the longest prefix wildcard ("foo.*"), then "*"; nil if none
// fits. Domains compare case-insensitively. A port in the authority is
// part of what is matched ("foo.com:80" matches only a domain
// "foo.com:80", or a wildcard covering it) unless the configuration sets
// ignore_port_in_host_matching; the connection manager's
// strip_matching_host_port and strip_any_host_port rewrite the authority
// before routing and are not the router's part. A wildcard never matches
// the empty string: "*.foo.com" does not match ".foo.com".
func (t *Table) VirtualHost(authority []byte) *VirtualHost {
	host := authority
	if t.ignorePort {
		if i := portStart(host); i >= 0 {
			host = host[:i]
		}
	}
	var buf [256]byte
	var lc []byte
	if len(host) <= len(buf) {
		lc = buf[:len(host)]
		for i, c := range host {
			lc[i] = lower(c)
		}
	} else {
		lc = bytes.ToLower(host) // rare: allocates
	}
	if vh, ok := t.exact[string(lc)]; ok {
		return vh
	}
	for _, w := range t.suffix {
		if len(lc) > len(w.s) && string(lc[len(lc)-len(w.s):]) == w.s {
			return w.vh
		}
	}
	for _, w := range t.prefix {
		if len(lc) > len(w.s) && string(lc[:len(w.s)]) == w.s {
			return w.vh
		}
	}
	return t.any
}

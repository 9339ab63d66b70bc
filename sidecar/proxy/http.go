package proxy

import "github.com/skeinmesh/skein/sidecar/listener"

// addHTTPFilters registers the HTTP connection manager's factory.
func (p *Proxy) addHTTPFilters(filters map[string]listener.FilterFactory) {}

package proxy

import (
	"github.com/go-logr/logr"

	"github.com/skeinmesh/skein/sidecar/httpproxy"
	"github.com/skeinmesh/skein/sidecar/listener"
)

var _ httpproxy.Routes = (*Proxy)(nil)

// addHTTPFilters registers the HTTP connection manager's factory: route
// tables from RDS (Table), clusters from the cluster manager, metrics per
// cluster.
func (p *Proxy) addHTTPFilters(filters map[string]listener.FilterFactory) {
	filters[listener.HTTPConnectionManagerType] = p.counting(httpproxy.NewFactory(httpproxy.Deps{
		Routes:   p,
		Clusters: p.clusters,
		Stats:    p.stats,
		Log:      logr.FromSlogHandler(p.log.Handler()),
	}))
}

// Command coredns is CoreDNS's own server with only the plugins the local
// cluster needs: it answers for cluster.local from the Kubernetes API and
// has no forward plugin, so no query leaves the machine. bind keeps it off
// every address but the one the Corefile names.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives is the order in which the plugins of a server block run, as in
// CoreDNS's plugin.cfg; a Corefile may name only these.
var directives = []string{
	"bind",
	"ready",
	"health",
	"errors",
	"loadbalance",
	"cache",
	"kubernetes",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}

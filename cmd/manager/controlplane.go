package main

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/skeinmesh/skein/controllers"
	"github.com/skeinmesh/skein/internal/controlplane"
	"github.com/skeinmesh/skein/internal/meshconfig"
	"github.com/skeinmesh/skein/internal/xds/server"
)

// controlPlane makes the xDS control plane over the manager's cache.
func controlPlane(mgr ctrl.Manager, settings *meshconfig.Store, auth string) (*controlplane.ControlPlane, error) {
	o := controlplane.Options{
		Reader:   mgr.GetClient(),
		Settings: settings,
		Logger:   ctrl.Log.WithName("xds"),
		Registry: metrics.Registry,
	}
	switch auth {
	case "tokenreview":
		o.Authenticator = server.NewTokenReviewAuthenticator(mgr.GetClient(), 0)
	case "none":
	default:
		return nil, fmt.Errorf("--xds-authentication=%q: want tokenreview or none", auth)
	}
	return controlplane.New(o), nil
}

// reporter answers the reconcilers' questions about proxies from the xDS server.
type reporter struct{ s *server.Server }

func (r reporter) Report(kind, namespace, name string) (controllers.ProxyReport, bool) {
	c := r.s.Status(server.ObjectKey{Kind: kind, Namespace: namespace, Name: name})
	return controllers.ProxyReport{Total: c.Total, Synced: c.Synced, Rejected: c.Rejected, Generation: c.Generation, Message: c.NACKMessage}, true
}

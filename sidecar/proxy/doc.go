// Package proxy is skein-proxy's runtime: it holds the clusters
// (sidecar/upstream), the listeners (sidecar/listener) and the route tables
// (sidecar/router) that serve traffic, and applies configuration to them,
// from the bootstrap's static_resources at start and from xDS afterwards
// (it is the xdsclient.Handler).
//
// # Applying a config
//
// Apply receives the complete current set of one resource type. It decodes
// every resource, builds the whole new set and only then swaps it in:
//
//   - clusters: static and dynamic clusters together become
//     upstream.Manager.Update's complete set (unchanged clusters keep their
//     hosts and pools);
//   - endpoints: every ClusterLoadAssignment is checked first, then given to
//     its EDS clusters; an assignment that left the set empties its cluster;
//   - listeners: static and dynamic listeners together become
//     listener.Manager.Update's set (sockets of unchanged addresses are kept);
//     listeners with an api_listener are skipped;
//   - routes: every RouteConfiguration is compiled (and, with
//     validate_clusters, its clusters looked up) before the map of tables
//     the HTTP connection managers read is replaced with one atomic store.
//
// The first failure is returned, naming the resource and the field, and
// nothing changes: xdsclient NACKs with that message and the previous
// config keeps serving. A dynamic resource may not take the name of a
// static one (as in Envoy).
//
// The proxy is an xdsclient.VersionedHandler: ApplyVersion records the
// response's version for the config dump (the CDS and LDS dumps'
// version_info; each resource's version_info and last_updated are those
// of the update that last changed it, as in Envoy) and for the
// config_version_info metric; SetVersion moves the type's version when an
// unchanged set comes again under a new one.
//
// # Capture fallback
//
// An injected proxy's capture rules send all of the pod's TCP to 15001 and
// 15006 from the moment skein-init ran, before the control plane has said
// anything. With Config.Fallback the proxy starts with the first cut's
// behaviour as ordinary listeners: virtualOutbound and virtualInbound, each
// a tcp_proxy to an ORIGINAL_DST cluster named PassthroughCluster, so the
// pod's traffic flows unchanged. The first LDS update replaces them by name;
// the control plane's listeners of the same address keep the very sockets,
// so no connection is refused in between. Until then a CDS cluster named
// PassthroughCluster takes the fallback's place.
//
// # Readiness
//
// Ready is true once the static (or fallback) listeners are bound and, with
// ADS, the first CDS and LDS updates are applied and every route
// configuration those listeners ask RDS for has arrived; false again from
// Drain or DrainListeners on. (Listeners are not warmed as Envoy warms
// them: between an LDS update and the RDS update it needs, a request for
// an unknown route configuration is answered 404 no_route.)
package proxy

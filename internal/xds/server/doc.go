// Package server is Skein's xDS server: it keeps one versioned, consistency
// checked snapshot per connected proxy in go-control-plane's snapshot caches
// (ADS mode for sidecars, plain for proxyless gRPC clients: see caches.go),
// serves it over ADS (state of the world and delta) and the
// listener, route, cluster and endpoint discovery services, authenticates
// each stream with the pod's projected service-account token, regenerates
// every connected proxy's snapshot on a debounced Trigger, and tracks which
// proxies ACKed or NACKed which version, so that the objects whose content
// they carry can report it in status.
//
// The server does not know how a proxy's resources are made: a Generator,
// in the operator the translator over the current mesh model, makes them.
//
// # Node IDs
//
// A sidecar's node ID is Istio's "sidecar~<podIP>~<pod>.<namespace>~<namespace>.svc.cluster.local".
// A proxyless gRPC client (grpc-go's xds resolver, whose bootstrap names the
// node) uses "proxyless~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local":
// its name is informational, and its mesh.Proxy has a Namespace and no Pod.
// Any other form is refused with InvalidArgument.
//
// # Authentication
//
// Every stream (and unary Fetch) carries "authorization: Bearer <token>"
// metadata with a service-account token for audience "skein"; the
// Authenticator (TokenReviewAuthenticator in the operator) names its
// namespace, service account and, for a pod-bound token, pod. A missing or
// refused token ends the stream with Unauthenticated before anything is
// sent. A sidecar's node ID must name the token's pod and namespace, a
// proxyless client's the token's namespace; otherwise the stream ends with
// PermissionDenied naming both. The node ID may not change on a stream.
//
// # Versions and pushes
//
// Each resource type of a snapshot is versioned by a hash of its resources,
// so a regeneration that changes nothing pushes nothing, and one that
// changes only endpoints pushes only endpoints. A snapshot is published only
// when go-control-plane's Consistent accepts it and every cluster a route or
// TCP proxy names is in it; otherwise the proxy keeps its previous snapshot
// and the error is logged with the proxy's ID. A proxy's first stream
// generates its snapshot before its first request is answered; when its last
// stream closes the snapshot is cleared. Unary Fetch answers only for a
// proxy that has a stream open. Empty requests subscribe as wildcards
// (go-control-plane's legacy wildcard mode, as Envoy expects).
//
// # Status
//
// A proxy is synced when it subscribed to at least one type and ACKed the
// current version of every type it subscribed to; rejected when it NACKed
// the current version of some type. Status counts, for one object, the
// connected proxies whose current snapshot lists it among its Sources.
// skein_xds_push_seconds runs from the first Trigger of the burst that
// changed a proxy's snapshot to the proxy being synced again (from the
// earliest such change while the proxy stays unsynced); a proxy's first
// snapshot is not measured.
package server

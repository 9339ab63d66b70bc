// Package xdsclient is skein-proxy's ADS client: it keeps one aggregated
// xDS v3 stream to the control plane open, hands the Handler the complete
// current set of each resource type, ACKs what the Handler applied, NACKs
// what it refused, and keeps the last applied sets while the server is away.
//
// # Protocol
//
// Delta xDS is preferred (Options.Delta). A server that answers the delta
// stream with Unimplemented before sending anything gets state of the world
// for the rest of Run. All types are subscribed as wildcards with empty
// resource names (Envoy's legacy wildcard, which go-control-plane and
// Skein's server answer; go-control-plane's ADS-mode cache does not answer an
// explicit "*"), in Options.Types order, by default clusters, endpoints,
// listeners, routes. Named EDS and RDS subscriptions are not used: Skein's
// server sends a sidecar only what it needs.
//
//   - State of the world: every response is the full set of its type (true
//     of wildcard subscriptions). ACK: version_info and response_nonce of the
//     response. NACK: the last applied version_info, the response's nonce and
//     error_detail {code INVALID_ARGUMENT, message}. The node is sent on the
//     stream's first request; a reconnect sends the last applied versions.
//     Resource names are read from field 1 of each resource's encoding.
//   - Delta: the client keeps the set and adds and removes what responses
//     say. ACK: response_nonce. NACK: response_nonce and error_detail. On
//     every (re)connect it sends initial_resource_versions of the applied
//     set, so the server skips what is unchanged and removes what it no
//     longer has. After a NACK the next response is taken relative to what
//     the server sent (a server records what it sent, not what was applied).
//
// A response whose set equals the applied one is ACKed without calling the
// Handler (a reconnect does not re-apply an unchanged config).
//
// A Handler that implements VersionedHandler gets each set with the
// response's version (version_info, or system_version_info on delta
// streams) through ApplyVersion, and through SetVersion the version of a
// response that changed nothing but the version, so that it can report the
// version it runs (config dump, metrics).
//
// # NACK loops
//
// go-control-plane's snapshot cache answers a state-of-the-world NACK at
// once with the same, rejected version, since the NACK carries the previous
// version. The client NACKs a version it already NACKed only after a wait
// that grows like the connection backoff (from Backoff.Base, at most 10s),
// so a bad config costs the control plane a request every few seconds per
// proxy rather than a tight loop; a fixed config arrives with the next
// NACK's answer. Delta streams do not loop.
//
// # Failures
//
// Each attempt dials a new connection (so gRPC's own reconnect backoff does
// not stack on ours), reads the token again (projected tokens rotate) and
// sends it as "authorization: Bearer <token>". When a stream fails the
// Handler is not called: the proxy keeps serving the last applied sets. The
// client waits a random duration in [0, min(Max, Base*2^n)) (full jitter)
// before the n-th consecutive retry, and starts again from Base after a
// stream that lived longer than Backoff.Reset. The first failure of a series
// is logged at warn, every further attempt at debug.
//
// Responses are handled on one goroutine, in the order they arrive, so the
// Handler needs no locking across types.
package xdsclient

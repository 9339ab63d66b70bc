// Package upstream is skein-proxy's clusters: it compiles Envoy v3
// Cluster and ClusterLoadAssignment resources into hosts, a load balancer
// (sidecar/lb) and per-host connection pools (HTTP/1.1 keep-alive, HTTP/2
// multiplexed, raw TCP), and swaps host sets and whole cluster sets in
// atomically. The router calls, per request:
//
//	h, err := c.Pick(&pc)          // ErrNoHealthyUpstream: answer 503
//	h.Acquire(); defer h.Release() // the router owns the in-flight count
//	cn, err := c.HTTP1(ctx, h)     // or c.HTTP2(ctx, h), c.DialTCP(ctx, h)
//	... exchange over cn.R / cn.W ...
//	cn.Release(reusable)
//
// Pick, taking an idle HTTP/1.1 connection and Release allocate nothing.
//
// # What is supported, and decisions
//
//   - Types: EDS (hosts from SetAssignment), STATIC (IP literals of
//     load_assignment), STRICT_DNS (load_assignment names resolved with
//     net.Resolver at once and every dns_refresh_rate, 5s by default; every
//     address is a host; dns_lookup_family honoured; a failed lookup keeps
//     the last addresses and retries at dns_failure_refresh_rate's
//     base_interval), ORIGINAL_DST (lb_policy CLUSTER_PROVIDED; the host is
//     PickContext.OriginalDst, with upstream_port_override; unused hosts go
//     after cleanup_interval, 5s). LOGICAL_DNS is accepted as a STRICT_DNS
//     cluster of exactly one endpoint that keeps only the first address of
//     each answer: Envoy's logical host. Where Envoy keeps one host whose
//     address moves, here a new address is a new host and the old one
//     drains; requests in flight finish either way. respect_dns_ttl is
//     accepted and not honoured (net.Resolver does not report TTLs).
//   - Load balancing: lb_policy ROUND_ROBIN, LEAST_REQUEST, RANDOM,
//     RING_HASH, MAGLEV with their *_lb_config; load_balancing_policy, when
//     set, wins over lb_policy and its first policy this proxy implements is
//     used (as Envoy and grpc-go): round_robin, least_request, random,
//     ring_hash, maglev, cluster_provided. A supported policy whose settings
//     cannot be honoured (MURMUR_HASH_2, active_request_bias other than 1,
//     slow start) is refused, not skipped. RING_HASH and MAGLEV without a
//     request hash pick at random, as Envoy.
//   - Endpoints: priorities (LocalityLbEndpoints.priority, via
//     lb.PrioritySet), endpoint load_balancing_weight. Locality weights are
//     accepted and not applied: hosts are weighted by their own weights
//     across the localities of a priority. health_status UNHEALTHY,
//     DRAINING and TIMEOUT endpoints are left out of the host set, so never
//     picked, not even in panic mode; DEGRADED counts as healthy. An
//     assignment's hosts go through lb.Merge, so a host whose address stays
//     keeps its *lb.Host (in-flight count, health) and its pools.
//   - Protocol: HTTP/2 when typed_extension_protocol_options'
//     HttpProtocolOptions has explicit_http_config.http2_protocol_options
//     (or the deprecated http2_protocol_options is set); the request's own
//     protocol with use_downstream_protocol_config (or the deprecated
//     protocol_selection USE_DOWNSTREAM_PROTOCOL); HTTP/1.1 otherwise.
//     auto_config and HTTP/3 are refused. idle_timeout (1h by default)
//     closes idle connections, max_requests_per_connection caps HTTP/1.1
//     connections (refused for HTTP/2 so far), max_concurrent_streams caps
//     streams per HTTP/2 connection below the peer's limit,
//     connection_keepalive pings HTTP/2 connections.
//   - connect_timeout: 5s when unset. upstream_connection_options'
//     tcp_keepalive is honoured; without it there is no TCP keepalive.
//   - circuit_breakers, outlier_detection and health_checks are kept, as
//     data, in Policies: the pieces that enforce them act from outside the
//     request path (see Policies).
//   - Refused with the field's path, because ignoring them would change
//     behaviour silently: any Cluster field not listed in clusterFields
//     (subsets, custom cluster types, upstream filters, bind config, DNS
//     resolver settings, LRS...), transport sockets other than raw_buffer
//     ("TLS upstreams arrive with mTLS"), named endpoints, drop_overloads,
//     an overprovisioning_factor other than 140, non-TCP addresses, and
//     non-empty HTTP/1.1 protocol options. Unknown fields (a newer control
//     plane's) are ignored, as Envoy ignores them.
//
// # Connections
//
// HTTP/1.1: each host has a LIFO pool of up to MaxIdlePerHost idle
// connections with their pooled http1 reader and writer. Before reuse an
// idle connection is checked with a non-blocking MSG_PEEK: one the server
// closed (or wrote to unasked) is discarded and the next one tried, then a
// new one dialled. That leaves the server closing a connection while the
// request is on its way; Conn1.Reused lets the router retry such a request
// once, when it is replayable. HTTP/2: a few ClientConns of
// golang.org/x/net/http2 per host over plain TCP (prior knowledge), a new
// one only when every pooled one is at its stream limit, one dial at a
// time per host. Errors are *Error values matching ErrConnectFailure or
// ErrConnectTimeout (the caller's own context ending is returned as it
// is).
//
// # Updates
//
// A compiled Cluster's settings never change; Manager.Update builds every
// new and changed cluster before swapping the set, keeps unchanged ones
// (proto.Equal) with their pools, and drains the rest: idle connections
// close at once, busy ones when released, HTTP/2 ones a second after their
// last stream. SetAssignment builds the new balancer completely and swaps
// it in with one atomic store; a request keeps the host it picked and its
// connection. A host removed between Pick and HTTP1 still gets a (new,
// unpooled) connection, so no request is dropped by an update.
package upstream

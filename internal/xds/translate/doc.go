// Package translate turns the mesh model into the xDS resources of one
// proxy: pure functions, model and proxy in, Listeners, RouteConfigurations,
// Clusters and ClusterLoadAssignments out, with no client calls. The same
// model always gives byte-identical resources: every list is sorted by
// name, maps inside typed configs are packed deterministically.
//
// # Shape of the work
//
// ForProxy(m, p) = Merge(Outbound(m, p.Namespace), Inbound(m, p)) followed by
// one per-proxy step (locality priorities, below). Outbound depends only on
// the proxy's namespace, so a server translating many proxies computes it
// once per namespace and calls ForProxyFrom(m, p, outbound), which shares
// it without modifying it. Resources and the messages in them are never
// modified after translation; some constant typed configs (the router's,
// HTTP/2 protocol options) are one shared message.
//
// # Names (Istio's)
//
//   - Clusters "outbound|<port>|<subset>|<host>", host the Service's FQDN;
//     "inbound|<targetPort>||" (ORIGINAL_DST: the pod IP and target port, from 127.0.0.6); PassthroughCluster
//     (ORIGINAL_DST, CLUSTER_PROVIDED); BlackHoleCluster (STATIC, no endpoints).
//   - Listeners virtualOutbound (0.0.0.0:15001) and virtualInbound
//     (0.0.0.0:15006), both use_original_dst; API listeners "<host>:<port>".
//   - Route configurations "<port>" (sidecars) and "<host>:<port>" (proxyless).
//
// # Visibility
//
// A proxy sees the services exported to its namespace: exportTo empty or
// "*" everywhere, "." the service's own namespace, else the namespaces
// named (a service not exported to its own namespace is not visible there
// either, as written). A service a visible service's route or failover
// sends to gets its cluster even when not itself exported to the caller:
// the policy's namespace had to see it for the policy to be accepted. A
// proxy always serves its own services' inbound, exported or not.
//
// # Outbound (sidecar)
//
// One EDS cluster (config over ADS, connect timeout 10s) per service port,
// plus one per subset; a ClusterLoadAssignment of the same name holds the
// ready endpoints (of the subset's labels), port Endpoint.Ports[servicePort],
// grouped by (region, zone, subzone), each locality weighted by its number
// of endpoints (grpc-go ignores a locality without a weight).
//
// virtualOutbound has one filter chain per ClusterIP and port, matched on
// the /32 (or /128) and destination port. A headless service (no
// ClusterIP) has no chain: it is reached through the default chain.
// HTTP, HTTP2, GRPC and AUTO ports get an HTTP connection manager with RDS
// route configuration "<port>" that lets WebSocket upgrades through
// (upgrade_configs, as Istio sets; inbound HCMs too); AUTO is treated as HTTP (the proxy sniffs
// the protocol and falls back to TCP itself) and its clusters use the
// downstream protocol. TCP ports get tcp_proxy to the port's cluster, or
// weighted_clusters when the policy's first route with backends splits (the
// route's HTTP matches do not apply at L4). The default chain is tcp_proxy
// to PassthroughCluster under ALLOW_ANY, to BlackHoleCluster under
// REGISTRY_ONLY.
//
// Route configuration "<port>" has one virtual host per visible service on
// that port, named "<host>:<port>", answering name.ns, name.ns.svc and the
// FQDN, each bare and with ":port", every "ClusterIP:port", and the bare
// name (and name:port) only for services of the caller's own namespace, so
// that two namespaces' "api" never collide. A catch-all "*" virtual host
// goes to PassthroughCluster (ALLOW_ANY) or answers 502 (REGISTRY_ONLY).
//
// # TrafficPolicy
//
// The policy for a port is the port's own, else the service-wide one. A
// route's own timeouts, retries or faultInjection replace the policy's
// section as a whole (a route setting only timeouts.request has no idle
// timeout of the policy's).
//
//   - routes: each match of a route is an Envoy route (matches are
//     alternatives), in order, before the default route "/" to
//     outbound|port||host. Path exact -> path; prefix -> segment-wise, as
//     the API says, written as the regex "<prefix>(/.*)?" (grpc-go does not
//     know path_separated_prefix) unless it ends in "/"; regex -> safe_regex.
//     Method -> ":method" header; headers (lower-cased names) exact, prefix,
//     regex, present (present: false is present_match with invert_match);
//     query parameters (grpc-go ignores a route with query matchers).
//     Backends become weighted_clusters (weight default 1, port default the
//     route's port, zero weights dropped, one left -> a plain cluster); a
//     route whose backends all fail to resolve answers 503.
//   - timeouts: route timeout (0s, no limit, when unset: Envoy's default 15s
//     is not the API's), idle_timeout; proxyless route configurations also
//     carry it as max_stream_duration, which grpc-go reads.
//   - retries: retry_policy; retryOn names are Envoy's (HTTP and gRPC share
//     retry_on); num_retries default 2; 0 attempts means no retry policy
//     (grpc-go refuses num_retries 0); back-off always explicit (25ms, cap
//     10x base); the budget becomes the cluster's
//     circuit_breakers.thresholds[DEFAULT].retry_budget unless
//     circuitBreaker.maxRetries is set. Sidecar routes also get Istio's
//     host selection: the previous_hosts retry host predicate (name and
//     typed_config) and host_selection_retry_max_attempts 5.
//   - no retries: a sidecar route gets Istio's default policy, as Istio
//     gives every route: num_retries 2, retry_on "connect-failure,
//     refused-stream,unavailable,cancelled,retriable-status-codes",
//     retriable_status_codes [503], previous_hosts, 5 host selection
//     attempts, Envoy's default back-off, no retry budget (the proxy then
//     caps nothing, as Istio's max_retries 2^32-1). This is what makes a
//     scale-down lossless: a request the terminating pod's inbound proxy
//     answers 503 upstream_connect_failure (the app stopped listening
//     before the caller's EDS dropped the pod) is retried on another pod.
//     Proxyless route configurations get no default: grpc-go would accept
//     it (its RDS validation keeps the gRPC names of retry_on, ignores the
//     others and the host predicate, and wants num_retries >= 1), but it
//     already retries transparently what never reached a server, and
//     retrying CANCELLED and UNAVAILABLE for every proxyless call is a
//     change its users did not ask for; set retries to get them.
//   - circuitBreaker -> circuit_breakers.thresholds[DEFAULT].
//   - outlierDetection -> outlier_detection with Envoy's other ejections
//     (success rate; five 5xx when consecutive5xx is unset) turned off.
//   - healthCheck -> health_checks (http path/statuses, grpc service, tcp
//     connect). grpc-go ignores health_checks; it does not refuse them.
//   - loadBalancer: unset is LEAST_REQUEST. grpc-go accepts only
//     ROUND_ROBIN, RING_HASH and LEAST_REQUEST in lb_policy and refuses the
//     whole cluster otherwise, so RANDOM is lb_policy ROUND_ROBIN and
//     MAGLEV is lb_policy RING_HASH, each with load_balancing_policy [the
//     asked-for policy, that fallback]: Envoy (and grpc-go) use
//     load_balancing_policy when set, grpc-go skips the policy it does not
//     know. hashOn -> hash_policy on every route of the port (header, cookie
//     with ttl, or source IP; grpc-go hashes on headers only).
//   - faultInjection -> typed_per_filter_config of envoy.filters.http.fault
//     on the routes (a route's own overrides the policy's); the fault filter
//     is in an HCM's chain only when some route of its route configuration
//     uses it.
//   - failover.services: no aggregate cluster. The failover services'
//     ready endpoints, for the same port number (else the port of the same
//     name), are added to the target's ClusterLoadAssignment at lower
//     priorities, one per service in order; Envoy and grpc-go move to
//     priority N+1 when N has no healthy endpoint. Subset clusters get the
//     whole failover services, not their subsets.
//   - failover.locality: the one per-proxy step. The proxy's locality is
//     that of the endpoint whose Pod is the proxy's pod (in its namespace);
//     for such a proxy the target's endpoints get priority 0 in its zone, 1
//     in its region, 2 elsewhere, failover services after those.
//     Priorities are renumbered without gaps. A proxyless client or a pod no
//     service selects has no known locality: no locality priorities.
//
// # Proxyless gRPC
//
// For every visible GRPC and HTTP2 port, a Listener "<host>:<port>" whose
// api_listener is an HCM with RDS "<host>:<port>" (fault filter when used,
// router last with a typed config), and that RouteConfiguration with one
// virtual host answering "<host>:<port>" and "<host>" and the same routes
// as the sidecar's. grpc-go's xds resolver dialing xds:///<host>:<port>
// asks for exactly these names, then the outbound clusters and their EDS.
// Sidecars receive these listeners too (the model does not say which
// proxies are proxyless): Envoy ignores an api_listener that arrives by
// LDS, and skein-proxy must skip listeners with an api_listener rather than
// NACK them.
//
// Every scenario's API listeners, their route configurations, the EDS
// clusters and ClusterLoadAssignments were run through grpc-go v1.84.0's
// own resource validation (xdsresource's unmarshal functions, with the
// router, fault and RBAC filters and the LB policy converters registered)
// and accepted; that check found the ring hash hash-function rule above.
//
// # Inbound and authorization
//
// A proxy with a pod gets virtualInbound: one chain per target port of
// every service of its namespace with an endpoint for the pod, matched on
// destination_port. Two services sharing a target port share its chain:
// the first (by namespace, name, then port) decides the protocol, the
// authorization policies of all of them apply. HTTP ports: HCM with an
// inline route configuration to inbound|<port>|| and the RBAC HTTP filters;
// TCP ports: network RBAC filters then tcp_proxy. The default chain passes
// anything else through to PassthroughCluster. A proxyless client has no
// Inbound.
//
// Authorization policies protect a service when they are in its namespace
// and name it (and, with a port, that service port) or have no targetRef.
// As in Istio: AUDIT policies become a first RBAC filter with action LOG
// (marks, never refuses); DENY policies one with action DENY; ALLOW
// policies one with action ALLOW, so that when any ALLOW policy applies a
// request must match one; with none, defaultAuthorization DENY is an ALLOW
// filter with no policies (refuses everything), ALLOW adds nothing. Each
// rule is an Envoy policy "ns[<ns>]-policy[<name>]-rule[<i>]":
// principals = and(or(sources), when conditions as header principals),
// permissions = or(operations). principals match the peer's SPIFFE ID
// exactly, by prefix ("x*"), suffix ("*x"), or any authenticated peer
// ("*"); namespaces are the regex spiffe://<trustDomain>/ns/<ns>/sa/[^/]+;
// serviceAccounts the exact ID; ipBlocks remote_ip. Operation ports match
// the destination port of the connection as it reached the pod (the target
// port), methods the ":method" header, paths url_path (segment-wise
// prefixes as above). On TCP ports the HTTP-only parts (methods, paths,
// when) cannot be checked: an ALLOW or AUDIT rule using them is left out
// (it matches nothing), a DENY rule drops them (it matches more): never
// allow more than the policy says.
//
// Peer identities come from mTLS; the transport sockets (SDS) are not part
// of this translation yet, so "authenticated" principals only match once
// they are.
//
// # Sources
//
// Resources.Sources lists every MeshService, TrafficPolicy and
// AuthorizationPolicy whose content went into the resources (including
// services reached only as backends or failover targets), sorted and
// unique, with the generation used.
package translate

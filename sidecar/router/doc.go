// Package router compiles an Envoy v3 RouteConfiguration into a Table and
// routes requests with it: the virtual host by authority, the first
// route whose match the request satisfies, and that route's action
// (forward to a cluster or one of weighted clusters, redirect, or answer
// directly) with its rewrites, header edits, timeouts and retry and hash
// policies. It is pure: no I/O, no clocks, no randomness of its own
// (callers pass the random number PickCluster uses).
//
// Compile validates everything and refuses, with the resource's name and
// the field's path ("route configuration \"80\":
// virtual_hosts[0].routes[2].match.safe_regex.regex: ..."), any field it
// does not implement that would change how a request is handled if
// ignored. Table.Route and the methods a request path calls (Pick,
// RewritePath with a prefix rewrite, Location, Hash, HeaderEdits.Apply)
// allocate nothing; regexes cost what Go's regexp costs.
//
// Behaviour, where Envoy leaves a choice or this package differs:
//
//   - Regexes are RE2 syntax compiled with Go's regexp (Envoy's engine is
//     RE2 too); route, header and query matches are full matches,
//     rewrites replace every match. Envoy's program-size limit is not
//     applied.
//   - Authorities match domains case-insensitively, port included, unless
//     ignore_port_in_host_matching; see Table.VirtualHost. The HTTP
//     connection manager's strip_*_host_port options are the caller's.
//   - A header with several fields matches on the first (Request.Header),
//     where Envoy joins them with ",". Query parameters are matched on
//     their first occurrence, raw (not percent-decoded), as Envoy.
//   - Header values are literal: no %VARIABLE% substitution; "%%" is a
//     '%', and any other '%' is refused at compile time. A value that is
//     empty is not added unless keep_empty_value. Pseudo-headers and Host
//     may not be edited (as Envoy).
//   - Header edit order is Envoy's: within a level removals, then
//     additions; levels route, virtual host, route configuration (the
//     least specific wins), or the reverse with
//     most_specific_header_mutations_wins; a weighted cluster's own
//     edits come first of all.
//   - Timeouts: an unset route timeout is Envoy's 15s; "0s" (what the
//     control plane emits) means none. typed_per_filter_config is kept
//     opaque, most specific entry winning, for the HTTP filters.
//   - Refused, among others: cluster_header, cluster_specifier_plugin,
//     runtime_fraction, non_forwarding_action, filter_action,
//     request_mirror_policies, hedge_policy, rate_limits, cors,
//     path_rewrite_policy, host_rewrite_header, internal_redirect_policy,
//     upgrade_configs, vhds, retry host predicates other than
//     previous_hosts, retry priorities, retry_options_predicates,
//     require_tls other than NONE, direct response bodies from files.
package router

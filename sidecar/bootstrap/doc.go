// Package bootstrap reads skein-proxy's startup config: an Envoy v3
// Bootstrap in YAML or JSON (`skein-proxy -c bootstrap.yaml`, as Envoy is
// started), and checks that it stays within the subset skein-proxy
// implements. A plain Envoy bootstrap within that subset works unchanged.
//
// # The subset
//
//   - node: every field is accepted and sent to the control plane as is.
//     node.id is required with dynamic_resources. Envoy does not expand
//     environment variables in a bootstrap and neither does skein-proxy: a
//     flag of the assembly (--service-node, like Envoy's) may override
//     node.id before Check.
//   - admin: address.socket_address (address and port_value), which must be
//     a loopback address or "localhost": the admin interface can change the
//     proxy's state. access_log, access_log_path, profile_path and
//     ignore_global_conn_limit are ignored; socket_options and allow_paths
//     are refused.
//   - static_resources: listeners and clusters, kept as protos for the
//     listener and upstream packages to compile (here only their names are
//     checked: present and unique). A bootstrap with static resources and
//     no dynamic_resources runs standalone, without a control plane.
//     secrets are refused (SDS comes with mTLS).
//   - dynamic_resources: ads_config with api_type GRPC (state of the world)
//     or DELTA_GRPC, transport_api_version V3 (or unset), and exactly one
//     grpc_services entry: envoy_grpc.cluster_name naming a static cluster
//     of type STATIC, STRICT_DNS or LOGICAL_DNS with exactly one endpoint
//     and no transport_socket (TLS to the control plane comes with the mesh
//     CA), plus initial_metadata, sent on every stream. lds_config and
//     cds_config are both required and must be `ads: {}`. timeout,
//     set_node_on_first_message_only (the node always goes on a stream's
//     first request only), rate_limit_settings and initial_fetch_timeout are
//     ignored. ADS resolves the target.
//   - Ignored, because they concern Envoy's process and change no traffic:
//     layered_runtime, overload_manager, watchdog(s), stats_config, the
//     stats flush and eviction settings, deferred_stat_options,
//     enable_dispatcher_stats, stats_server_version_override,
//     node_context_params, inline_headers, perf_tracing_file_path,
//     memory_allocator_manager, enable_worker_cpu_affinity and
//     application_log_config.
//   - Everything else is refused with its field path: stats_sinks (metrics
//     are scraped from :15090, not pushed), tracing, cluster_manager,
//     hds_config, DNS settings, bootstrap_extensions, header_prefix and the
//     rest. Ignoring them would change what the user asked for without
//     saying so.
//
// Typed configs ("@type") resolve against the proto types linked into the
// program, which are those skein-proxy's packages compile; any other type is
// refused with its path.
//
// # Identity and token
//
// An injected proxy is given no file: Sidecar.Bootstrap builds the same
// subset from the environment the injector sets (POD_NAME, POD_NAMESPACE,
// POD_IP from the downward API, SKEIN_XDS_ADDRESS), with the node ID Skein's
// control plane expects. The service-account token is not part of the
// bootstrap, since Envoy's format has no file-sourced metadata for
// envoy_grpc and projected tokens rotate: the assembly's --xds-token-file
// flag (DefaultTokenFile for an injected proxy) becomes TokenFile, which the
// xDS client calls on every (re)connect; it replaces a static
// "authorization" entry of initial_metadata.
package bootstrap

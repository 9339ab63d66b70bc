// Package listener is skein-proxy's listeners: it compiles Envoy v3
// Listeners (validating them, with errors that name the listener and the
// field), binds their sockets, and serves each connection with the filter
// chain its destination selects: for a use_original_dst listener (the
// capture ports 15001 and 15006) the original destination read with
// SO_ORIGINAL_DST, else the address it arrived at.
//
// A chain is network filters then one terminal filter, each built by a
// FilterFactory registered by typed_config type URL: tcp_proxy is built in
// (TCPProxy, dialing through a Dialer the assembly supplies); the HCM and
// network RBAC factories come from the assembly. A chain that ends in the
// HCM first detects the protocol from the connection's first bytes, and
// passes connections that are not HTTP through to their original
// destination (see detect.go). Unknown filters and fields are refused,
// never dropped; listeners with an api_listener are skipped.
//
// Manager.Update compiles every listener and binds every new address
// before it applies anything; listeners whose address did not change keep
// their sockets, and each connection keeps the config it was accepted
// with. Manager.Drain stops accepting and waits for connections, with a
// deadline. Counters per listener and chain are in ListenerStats.
package listener

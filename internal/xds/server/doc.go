// Package server is Skein's xDS server: it keeps one versioned, consistency
// checked snapshot per connected proxy in go-control-plane's snapshot cache,
// serves it over ADS (state of the world and delta) and the per-type
// discovery services, authenticates each stream with the pod's projected
// service-account token, regenerates every connected proxy's snapshot on a
// debounced Trigger, and tracks which proxies ACKed or NACKed which version
// so that the objects whose content they carry can report it in status.
//
// The server does not know how a proxy's resources are made: a Generator,
// in the operator the translator over the current mesh model, produces them.
package server

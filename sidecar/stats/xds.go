package stats

import "strings"

// The result label of config_updates_total.
const (
	resultAccepted = "accepted"
	resultRejected = "rejected"
)

// xdsTypes are the values of the type label: Envoy's short names of the
// discovery services, and "other" for any other resource type. Their
// order is the order of Stats.updates.
var xdsTypes = [...]string{"lds", "rds", "cds", "eds", "sds", "other"}

// xdsTypeIndex is xdsType's label as its index in xdsTypes.
func xdsTypeIndex(typeURL string) int {
	switch typeURL[strings.LastIndexByte(typeURL, '/')+1:] {
	case "envoy.config.listener.v3.Listener", "lds":
		return 0
	case "envoy.config.route.v3.RouteConfiguration", "rds":
		return 1
	case "envoy.config.cluster.v3.Cluster", "cds":
		return 2
	case "envoy.config.endpoint.v3.ClusterLoadAssignment", "eds":
		return 3
	case "envoy.extensions.transport_sockets.tls.v3.Secret", "sds":
		return 4
	}
	return 5
}

// xdsType names a resource type URL (or one of the short names) by its
// discovery service, so the label's values stay a fixed set whatever the
// control plane sends.
func xdsType(typeURL string) string { return xdsTypes[xdsTypeIndex(typeURL)] }

// ConfigUpdate counts an xDS update of typeURL (such as
// "type.googleapis.com/envoy.config.cluster.v3.Cluster", or "cds") that the
// proxy accepted (ACK) or rejected (NACK).
func (s *Stats) ConfigUpdate(typeURL string, accepted bool) {
	result := 1
	if accepted {
		result = 0
	}
	s.updates[xdsTypeIndex(typeURL)][result].Add(1)
}

// SetConfigVersion records the version of the last accepted update of
// typeURL: config_version_info{type,version} is 1, and the series of the
// type's previous version is gone.
func (s *Stats) SetConfigVersion(typeURL, version string) {
	t := xdsType(typeURL)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions[t] = version
}

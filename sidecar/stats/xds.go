package stats

import "strings"

// The result label of config_updates_total.
const (
	resultAccepted = "accepted"
	resultRejected = "rejected"
)

// xdsTypes are the values of the type label: Envoy's short names of the
// discovery services, and "other" for any other resource type.
var xdsTypes = [...]string{"lds", "rds", "cds", "eds", "sds", "other"}

// xdsType names a resource type URL (or one of the short names) by its
// discovery service, so the label's values stay a fixed set whatever the
// control plane sends.
func xdsType(typeURL string) string {
	switch typeURL[strings.LastIndexByte(typeURL, '/')+1:] {
	case "envoy.config.listener.v3.Listener", "lds":
		return "lds"
	case "envoy.config.route.v3.RouteConfiguration", "rds":
		return "rds"
	case "envoy.config.cluster.v3.Cluster", "cds":
		return "cds"
	case "envoy.config.endpoint.v3.ClusterLoadAssignment", "eds":
		return "eds"
	case "envoy.extensions.transport_sockets.tls.v3.Secret", "sds":
		return "sds"
	}
	return "other"
}

// ConfigUpdate counts an xDS update of typeURL (such as
// "type.googleapis.com/envoy.config.cluster.v3.Cluster", or "cds") that the
// proxy accepted (ACK) or rejected (NACK).
func (s *Stats) ConfigUpdate(typeURL string, accepted bool) {
	result := resultRejected
	if accepted {
		result = resultAccepted
	}
	s.configUpdates.WithLabelValues(xdsType(typeURL), result).Inc()
}

// SetConfigVersion records the version of the last accepted update of
// typeURL: config_version_info{type,version} is 1, and the series of the
// type's previous version is removed.
func (s *Stats) SetConfigVersion(typeURL, version string) {
	t := xdsType(typeURL)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.versions[t]; ok {
		if old == version {
			return
		}
		s.configVersion.DeleteLabelValues(t, old)
	}
	s.versions[t] = version
	s.configVersion.WithLabelValues(t, version).Set(1)
}

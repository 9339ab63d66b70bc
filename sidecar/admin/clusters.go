package admin

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// ClusterStatus is one applied cluster and its hosts.
type ClusterStatus struct {
	// Name is the cluster's name.
	Name string
	// Hosts are the cluster's hosts, in every priority; nil means none.
	Hosts []HostStatus
}

// HostStatus is the state of one host of a cluster.
type HostStatus struct {
	// Address is the host's "ip:port".
	Address string
	// HealthFlags say why the host is not healthy, in Envoy's words (the
	// Flag constants); none means healthy.
	HealthFlags []string
	// ActiveRequests are the requests in flight to the host.
	ActiveRequests uint64
	// ActiveConnections are the open connections to the host.
	ActiveConnections uint64
	// Weight is the host's load balancing weight; 0 is shown as is.
	Weight uint32
	// Priority is the host's priority; 0 is the highest.
	Priority uint32
}

// Health flags, as Envoy's /clusters names them.
const (
	// FlagFailedEDSHealth: the control plane says the host is unhealthy.
	FlagFailedEDSHealth = "failed_eds_health"
	// FlagDegradedEDSHealth: the control plane says the host is degraded.
	FlagDegradedEDSHealth = "degraded_eds_health"
	// FlagEDSDraining: the control plane says the host is draining.
	FlagEDSDraining = "eds_status_draining"
	// FlagFailedOutlierCheck: outlier detection ejected the host.
	FlagFailedOutlierCheck = "failed_outlier_check"
	// FlagFailedActiveHC: the host failed active health checking.
	FlagFailedActiveHC = "failed_active_hc"
	// FlagPendingDynamicRemoval: the host left the config and is kept
	// until its connections close.
	FlagPendingDynamicRemoval = "pending_dynamic_removal"
)

// clustersText writes Envoy's text form of /clusters: a
// cluster::observability_name line per cluster, then
// cluster::host::field::value lines per host.
func clustersText(clusters []ClusterStatus) []byte {
	var b []byte
	for _, c := range clusters {
		b = append(b, c.Name+"::observability_name::"+c.Name+"\n"...)
		for _, h := range c.Hosts {
			prefix := c.Name + "::" + h.Address + "::"
			b = append(b, prefix+"cx_active::"...)
			b = strconv.AppendUint(b, h.ActiveConnections, 10)
			b = append(b, "\n"+prefix+"rq_active::"...)
			b = strconv.AppendUint(b, h.ActiveRequests, 10)
			b = append(b, "\n"+prefix+"health_flags::"...)
			if len(h.HealthFlags) == 0 {
				b = append(b, "healthy"...)
			}
			for _, f := range h.HealthFlags {
				b = append(b, "/"+f...)
			}
			b = append(b, "\n"+prefix+"weight::"...)
			b = strconv.AppendUint(b, uint64(h.Weight), 10)
			b = append(b, "\n"+prefix+"priority::"...)
			b = strconv.AppendUint(b, uint64(h.Priority), 10)
			b = append(b, '\n')
		}
	}
	return b
}

// clustersJSON writes ?format=json: Envoy's admin.v3.Clusters, as
// protojson writes it (JSON names, zero values left out). Health flags
// without a field there show in the text form only. It is written from the
// structs below, not from admin.v3's messages, which would link that
// package for this page alone (docs/proxy.md, "Memory").
func clustersJSON(clusters []ClusterStatus) ([]byte, error) {
	out := clustersDoc{ClusterStatuses: []clusterJSON{}}
	for _, c := range clusters {
		cs := clusterJSON{Name: c.Name}
		for _, h := range c.Hosts {
			addr, err := protojson.Marshal(address(h.Address))
			if err != nil {
				return nil, err
			}
			cs.HostStatuses = append(cs.HostStatuses, hostJSON{
				Address: addr,
				Stats: []simpleMetric{
					{Type: "GAUGE", Name: "cx_active", Value: h.ActiveConnections},
					{Type: "GAUGE", Name: "rq_active", Value: h.ActiveRequests},
				},
				HealthStatus: healthStatus(h.HealthFlags),
				Weight:       h.Weight,
				Priority:     h.Priority,
			})
		}
		out.ClusterStatuses = append(out.ClusterStatuses, cs)
	}
	if len(out.ClusterStatuses) == 0 {
		return []byte("{}"), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// The messages of admin.v3.Clusters that clustersJSON writes, each field
// under its JSON name; uint64 values are strings, as in protojson.
type (
	clustersDoc struct {
		ClusterStatuses []clusterJSON `json:"clusterStatuses,omitempty"`
	}
	clusterJSON struct {
		Name         string     `json:"name,omitempty"`
		HostStatuses []hostJSON `json:"hostStatuses,omitempty"`
	}
	hostJSON struct {
		Address      json.RawMessage `json:"address,omitempty"`
		Stats        []simpleMetric  `json:"stats,omitempty"`
		HealthStatus hostHealth      `json:"healthStatus"`
		Weight       uint32          `json:"weight,omitempty"`
		Priority     uint32          `json:"priority,omitempty"`
	}
	simpleMetric struct {
		Type  string `json:"type,omitempty"` // COUNTER is the zero value and left out
		Value uint64 `json:"value,omitempty,string"`
		Name  string `json:"name,omitempty"`
	}
	hostHealth struct {
		FailedActiveHealthCheck bool   `json:"failedActiveHealthCheck,omitempty"`
		FailedOutlierCheck      bool   `json:"failedOutlierCheck,omitempty"`
		PendingDynamicRemoval   bool   `json:"pendingDynamicRemoval,omitempty"`
		EdsHealthStatus         string `json:"edsHealthStatus,omitempty"`
	}
)

func address(addr string) *corev3.Address {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "@") {
			return &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: addr}}}
		}
		host = addr
	}
	n, _ := strconv.ParseUint(port, 10, 32)
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(n)},
	}}}
}

func healthStatus(flags []string) hostHealth {
	hs := hostHealth{EdsHealthStatus: corev3.HealthStatus_HEALTHY.String()}
	for _, f := range flags {
		switch f {
		case FlagFailedEDSHealth:
			hs.EdsHealthStatus = corev3.HealthStatus_UNHEALTHY.String()
		case FlagDegradedEDSHealth:
			hs.EdsHealthStatus = corev3.HealthStatus_DEGRADED.String()
		case FlagEDSDraining:
			hs.EdsHealthStatus = corev3.HealthStatus_DRAINING.String()
		case FlagFailedOutlierCheck:
			hs.FailedOutlierCheck = true
		case FlagFailedActiveHC:
			hs.FailedActiveHealthCheck = true
		case FlagPendingDynamicRemoval:
			hs.PendingDynamicRemoval = true
		}
	}
	return hs
}

package bootstrap

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DefaultTokenFile is where the injector mounts the proxy's projected
// service-account token (audience "skein").
const DefaultTokenFile = "/var/run/secrets/skein/token"

// TokenFile returns a token source for the xDS client that reads path on
// every call, since the kubelet rotates projected tokens in place. The
// content is trimmed of white space; a missing or empty file is an error,
// so the client retries rather than connecting without its identity.
func TokenFile(path string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("xDS token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("xDS token: %s is empty", path)
		}
		return tok, nil
	}
}

// Sidecar is what an injected proxy knows of itself: the injector sets
// these from the downward API and its own config.
type Sidecar struct {
	// PodName is $POD_NAME. Required.
	PodName string
	// Namespace is $POD_NAMESPACE. Required.
	Namespace string
	// PodIP is $POD_IP. Required.
	PodIP string
	// XDSAddress is $SKEIN_XDS_ADDRESS, the control plane's host:port.
	// Required.
	XDSAddress string
}

// SidecarFromEnv reads a Sidecar from the environment the injector sets
// (getenv is os.Getenv outside tests).
func SidecarFromEnv(getenv func(string) string) Sidecar {
	return Sidecar{
		PodName:    getenv("POD_NAME"),
		Namespace:  getenv("POD_NAMESPACE"),
		PodIP:      getenv("POD_IP"),
		XDSAddress: getenv("SKEIN_XDS_ADDRESS"),
	}
}

// XDSClusterName is the static cluster of a sidecar's bootstrap that names
// the control plane.
const XDSClusterName = "xds-grpc"

// NodeID is the sidecar's node ID as Skein's control plane expects it:
// sidecar~<pod IP>~<pod>.<namespace>~<namespace>.svc.cluster.local.
func (s Sidecar) NodeID() string {
	return "sidecar~" + s.PodIP + "~" + s.PodName + "." + s.Namespace + "~" + s.Namespace + ".svc.cluster.local"
}

// Bootstrap is the bootstrap an injected proxy runs when it is given no
// file: node ID from the pod, admin on 127.0.0.1:15000, delta ADS to
// XDSAddress through the static cluster "xds-grpc" (STRICT_DNS for a host
// name, STATIC for an IP), and listeners and clusters over ADS. It is the
// same subset a file may hold, so it passes Check.
func (s Sidecar) Bootstrap() (*bootstrapv3.Bootstrap, error) {
	var errs []error
	for _, f := range []struct{ env, v string }{
		{"POD_NAME", s.PodName}, {"POD_NAMESPACE", s.Namespace}, {"POD_IP", s.PodIP}, {"SKEIN_XDS_ADDRESS", s.XDSAddress},
	} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("$%s: required", f.env))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	host, portStr, err := net.SplitHostPort(s.XDSAddress)
	port, perr := strconv.ParseUint(portStr, 10, 16)
	if err != nil || perr != nil || port == 0 || host == "" {
		return nil, fmt.Errorf("$SKEIN_XDS_ADDRESS: %q is not host:port", s.XDSAddress)
	}
	typ := clusterv3.Cluster_STRICT_DNS
	if _, err := netip.ParseAddr(host); err == nil {
		typ = clusterv3.Cluster_STATIC
	}
	ads := &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
	return &bootstrapv3.Bootstrap{
		Node:  &corev3.Node{Id: s.NodeID(), Cluster: s.Namespace},
		Admin: &bootstrapv3.Admin{Address: socketAddress("127.0.0.1", 15000)},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{{
			Name:                 XDSClusterName,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: typ},
			ConnectTimeout:       durationpb.New(5 * time.Second),
			LoadAssignment: &endpointv3.ClusterLoadAssignment{
				ClusterName: XDSClusterName,
				Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(host, uint32(port))}},
				}}}},
			},
		}}},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			LdsConfig: ads,
			CdsConfig: ads,
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             corev3.ApiConfigSource_DELTA_GRPC,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: XDSClusterName},
				}}},
			},
		},
	}, nil
}

func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

package server

import (
	"net/netip"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skeinmesh/skein/internal/mesh"
)

// Node ID kinds, the first field of a node ID.
const (
	// NodeKindSidecar is a skein-proxy sidecar in a pod:
	// "sidecar~<podIP>~<pod>.<namespace>~<namespace>.svc.cluster.local".
	NodeKindSidecar = "sidecar"
	// NodeKindProxyless is a proxyless gRPC client (grpc-go's xds resolver):
	// "proxyless~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local".
	// Its name is informational; only the namespace is checked against the
	// client's token, and the resulting mesh.Proxy has no Pod.
	NodeKindProxyless = "proxyless"
)

// nodeIDForm is the expected form, quoted in every refusal.
const nodeIDForm = `"sidecar~<podIP>~<pod>.<namespace>~<namespace>.svc.cluster.local" or "proxyless~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local"`

// ParseNodeID parses an xDS node ID of Istio's form into the proxy it names.
// A sidecar ID gives ID, Namespace, Pod and IP; a proxyless ID gives ID,
// Namespace and IP, and no Pod. The DNS domain after "<namespace>.svc." is
// not checked, so clusters with another domain work. A malformed ID is an
// error with code InvalidArgument naming the expected form.
func ParseNodeID(id string) (mesh.Proxy, error) {
	bad := func(why string) (mesh.Proxy, error) {
		return mesh.Proxy{}, status.Errorf(codes.InvalidArgument, "node id %q: %s; expected %s", id, why, nodeIDForm)
	}
	fields := strings.Split(id, "~")
	if len(fields) != 4 {
		return bad("want 4 fields separated by \"~\"")
	}
	kind, ip, workload, domain := fields[0], fields[1], fields[2], fields[3]
	if kind != NodeKindSidecar && kind != NodeKindProxyless {
		return bad("unknown kind " + quote(kind))
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.Zone() != "" {
		return bad("bad IP " + quote(ip))
	}
	name, ns, ok := strings.Cut(workload, ".")
	if !ok || name == "" || ns == "" {
		return bad("bad workload " + quote(workload) + ", want <name>.<namespace>")
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return bad("bad name " + quote(name))
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return bad("bad namespace " + quote(ns))
	}
	if !strings.HasPrefix(domain, ns+".svc.") || len(domain) == len(ns)+len(".svc.") {
		return bad("domain " + quote(domain) + " is not " + ns + ".svc.<cluster domain>")
	}
	p := mesh.Proxy{ID: id, Namespace: ns, IP: addr.String()}
	if kind == NodeKindSidecar {
		p.Pod = name
	}
	return p, nil
}

func quote(s string) string { return `"` + s + `"` }

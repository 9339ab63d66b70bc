package mesh

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Node labels that place an endpoint.
const (
	// LabelRegion is the well-known Kubernetes label of a node's region.
	LabelRegion = corev1.LabelTopologyRegion
	// LabelZone is the well-known Kubernetes label of a node's zone.
	LabelZone = corev1.LabelTopologyZone
	// LabelSubZone is Skein's label of a node's subzone, such as a rack.
	LabelSubZone = "topology.skein.io/subzone"
)

// endpointIndex holds what endpoints are joined with: each Service's
// EndpointSlices, sorted by name, and the pods and nodes.
type endpointIndex struct {
	slices map[nsName][]*discoveryv1.EndpointSlice
	pods   map[nsName]*corev1.Pod
	nodes  map[string]*corev1.Node
}

func newEndpointIndex(in Inputs) endpointIndex {
	x := endpointIndex{
		slices: make(map[nsName][]*discoveryv1.EndpointSlice),
		pods:   make(map[nsName]*corev1.Pod, len(in.Pods)),
		nodes:  make(map[string]*corev1.Node, len(in.Nodes)),
	}
	for i := range in.EndpointSlices {
		es := &in.EndpointSlices[i]
		svc, ok := es.Labels[discoveryv1.LabelServiceName]
		if !ok || es.DeletionTimestamp != nil {
			continue
		}
		k := nsName{es.Namespace, svc}
		x.slices[k] = append(x.slices[k], es)
	}
	for _, list := range x.slices {
		slices.SortFunc(list, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	}
	// Pods and nodes being deleted still describe their endpoints, which
	// the slices then report as terminating.
	for i := range in.Pods {
		p := &in.Pods[i]
		x.pods[nsName{p.Namespace, p.Name}] = p
	}
	for i := range in.Nodes {
		x.nodes[in.Nodes[i].Name] = &in.Nodes[i]
	}
	return x
}

// endpoints are the Service's endpoints from its IPv4 and IPv6
// EndpointSlices, merged by address and sorted by it. An endpoint's port
// for a meshed port comes from the slice port named like the Service port,
// which is how the EndpointSlice controller names them.
func (x endpointIndex) endpoints(svc *corev1.Service, ports []Port) []Endpoint {
	list := x.slices[nsName{svc.Namespace, svc.Name}]
	if len(list) == 0 {
		return nil
	}
	portNames := make([]string, len(ports))
	for i, p := range ports {
		portNames[i] = serviceTCPPort(svc, p.Number).Name
	}
	byAddr := make(map[netip.Addr]*Endpoint)
	var order []netip.Addr
	for _, es := range list {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		for i := range es.Endpoints {
			ep := &es.Endpoints[i]
			if len(ep.Addresses) == 0 {
				continue
			}
			// The API makes an endpoint's addresses fungible; like
			// kube-proxy, use the first.
			addr, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil {
				continue
			}
			e, ok := byAddr[addr]
			if !ok {
				e = &Endpoint{IP: addr.String(), Ports: make(map[int32]int32, len(ports))}
				byAddr[addr] = e
				order = append(order, addr)
			}
			for j, p := range ports {
				if n, ok := slicePort(es, portNames[j]); ok {
					e.Ports[p.Number] = n
				}
			}
			// An address in several slices is ready if any reports it ready.
			e.Ready = e.Ready || endpointReady(ep.Conditions)
			x.locate(e, es.Namespace, ep)
		}
	}
	slices.SortFunc(order, func(a, b netip.Addr) int { return a.Compare(b) })
	out := make([]Endpoint, len(order))
	for i, a := range order {
		out[i] = *byAddr[a]
	}
	return out
}

// slicePort is the number of the slice's TCP port named name.
func slicePort(es *discoveryv1.EndpointSlice, name string) (int32, bool) {
	for _, p := range es.Ports {
		if p.Port == nil || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
			continue
		}
		if p.Name == nil && name == "" || p.Name != nil && *p.Name == name {
			return *p.Port, true
		}
	}
	return 0, false
}

// endpointReady reads the slice's conditions as the API documents them: an
// unset ready counts as true, an unset terminating as false.
func endpointReady(c discoveryv1.EndpointConditions) bool {
	ready := c.Ready == nil || *c.Ready
	terminating := c.Terminating != nil && *c.Terminating
	return ready && !terminating
}

// locate fills in the endpoint's pod, labels, service account, node and
// locality, where the first slice to mention the address left them empty.
func (x endpointIndex) locate(e *Endpoint, namespace string, ep *discoveryv1.Endpoint) {
	var pod *corev1.Pod
	if ref := ep.TargetRef; ref != nil && ref.Kind == "Pod" && e.Pod == "" {
		ns := cmp.Or(ref.Namespace, namespace)
		e.Pod = ref.Name
		if p, ok := x.pods[nsName{ns, ref.Name}]; ok && (ref.UID == "" || p.UID == "" || ref.UID == p.UID) {
			pod = p
			e.ServiceAccount = p.Spec.ServiceAccountName
			e.Labels = maps.Clone(p.Labels)
		}
	}
	if e.Node == "" {
		switch {
		case ep.NodeName != nil:
			e.Node = *ep.NodeName
		case pod != nil:
			e.Node = pod.Spec.NodeName
		}
	}
	if n, ok := x.nodes[e.Node]; ok && e.Node != "" {
		e.Region = cmp.Or(e.Region, n.Labels[LabelRegion])
		e.Zone = cmp.Or(e.Zone, n.Labels[LabelZone])
		e.SubZone = cmp.Or(e.SubZone, n.Labels[LabelSubZone])
	}
	if e.Zone == "" && ep.Zone != nil {
		e.Zone = *ep.Zone
	}
}

package inject

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Annotations that Skein reads on pods (and, for AnnotationInject, on
// namespaces) or writes on injected pods.
const (
	// AnnotationInject is "enabled" or "disabled", on a namespace or a pod;
	// a label of the same name works too.
	AnnotationInject = "skein.io/inject"
	// AnnotationStatus marks an injected pod: JSON naming what was added.
	AnnotationStatus = "skein.io/status"
	// AnnotationOriginalProbes holds the app's probes that were rewritten to
	// go through the proxy, as JSON keyed by the rewritten path.
	AnnotationOriginalProbes = "skein.io/original-probes"
	// AnnotationProxyCPU is the proxy's CPU request, such as "100m".
	AnnotationProxyCPU = "skein.io/proxy-cpu"
	// AnnotationProxyMemory is the proxy's memory request, such as "64Mi".
	AnnotationProxyMemory = "skein.io/proxy-memory"
	// AnnotationProxyCPULimit is the proxy's CPU limit.
	AnnotationProxyCPULimit = "skein.io/proxy-cpu-limit"
	// AnnotationProxyMemoryLimit is the proxy's memory limit.
	AnnotationProxyMemoryLimit = "skein.io/proxy-memory-limit"
	// AnnotationNativeSidecar is "true" or "false": inject the proxy as a
	// native sidecar or a classic one, whatever the cluster supports.
	AnnotationNativeSidecar = "skein.io/native-sidecar"
	// AnnotationRewriteProbes is "true" (the default) or "false": whether the
	// app's HTTP and gRPC probes go through the proxy.
	AnnotationRewriteProbes = "skein.io/rewrite-probes"
	// AnnotationExcludeInboundPorts lists ports, such as "8081,9000", whose
	// incoming connections bypass the proxy.
	AnnotationExcludeInboundPorts = "skein.io/exclude-inbound-ports"
	// AnnotationExcludeOutboundPorts lists ports whose outgoing connections
	// bypass the proxy.
	AnnotationExcludeOutboundPorts = "skein.io/exclude-outbound-ports"
	// AnnotationExcludeOutboundCIDRs lists CIDRs, such as "10.0.0.0/8",
	// whose outgoing connections bypass the proxy.
	AnnotationExcludeOutboundCIDRs = "skein.io/exclude-outbound-cidrs"
	// AnnotationIncludeOutboundCIDRs lists the only CIDRs whose outgoing
	// connections go through the proxy; "*" or absent means all.
	AnnotationIncludeOutboundCIDRs = "skein.io/include-outbound-cidrs"
)

// Values of AnnotationInject.
const (
	InjectEnabled  = "enabled"
	InjectDisabled = "disabled"
)

// AnnotationError is a pod annotation whose value cannot be used.
type AnnotationError struct {
	// Annotation is the annotation's key.
	Annotation string
	// Value is the value found there.
	Value string
	// Reason says what is wrong and what is allowed.
	Reason string
}

func (e *AnnotationError) Error() string {
	return fmt.Sprintf("annotation %q: invalid value %q: %s", e.Annotation, e.Value, e.Reason)
}

// podOptions are what a pod's annotations ask of its injection, checked.
type podOptions struct {
	native               bool
	rewriteProbes        bool
	resources            corev1.ResourceRequirements
	excludeInboundPorts  []int32
	excludeOutboundPorts []int32
	excludeOutboundCIDRs []string
	includeOutboundCIDRs []string // nil: capture every destination
}

// podOptionsOf reads and checks every annotation that shapes the injection.
// It returns all bad annotations, each as an *AnnotationError, joined.
func podOptionsOf(pod *corev1.Pod, cfg Config) (podOptions, error) {
	a := pod.Annotations
	o := podOptions{native: cfg.NativeSidecars, rewriteProbes: true}
	var errs []error
	bad := func(key, reason string) {
		errs = append(errs, &AnnotationError{Annotation: key, Value: a[key], Reason: reason})
	}
	for key, dst := range map[string]*bool{AnnotationNativeSidecar: &o.native, AnnotationRewriteProbes: &o.rewriteProbes} {
		v, ok := a[key]
		switch {
		case !ok:
		case v == "true":
			*dst = true
		case v == "false":
			*dst = false
		default:
			bad(key, `must be "true" or "false"`)
		}
	}
	for key, dst := range map[string]*[]int32{
		AnnotationExcludeInboundPorts:  &o.excludeInboundPorts,
		AnnotationExcludeOutboundPorts: &o.excludeOutboundPorts,
	} {
		if v, ok := a[key]; ok {
			ports, err := parsePorts(v)
			if err != nil {
				bad(key, err.Error())
			}
			*dst = ports
		}
	}
	if v, ok := a[AnnotationExcludeOutboundCIDRs]; ok {
		cidrs, err := parseCIDRs(v)
		if err != nil {
			bad(AnnotationExcludeOutboundCIDRs, err.Error())
		}
		o.excludeOutboundCIDRs = cidrs
	}
	if v, ok := a[AnnotationIncludeOutboundCIDRs]; ok && strings.TrimSpace(v) != "*" {
		cidrs, err := parseCIDRs(v)
		switch {
		case err != nil:
			bad(AnnotationIncludeOutboundCIDRs, err.Error()+`, or "*" for every destination`)
		case len(cidrs) == 0:
			bad(AnnotationIncludeOutboundCIDRs, `must list at least one CIDR, or be "*" for every destination`)
		}
		o.includeOutboundCIDRs = cidrs
	}
	res, resErrs := proxyResources(a, cfg.ProxyResources)
	o.resources = res
	errs = append(errs, resErrs...)
	// Map iteration above is random; the joined error must not be.
	slices.SortStableFunc(errs, func(x, y error) int {
		var ex, ey *AnnotationError
		errors.As(x, &ex)
		errors.As(y, &ey)
		return strings.Compare(ex.Annotation, ey.Annotation)
	})
	return o, errors.Join(errs...)
}

// parsePorts reads a comma-separated list of ports, sorted and without
// repeats. Space around an item and empty items are ignored, as skein-init
// ignores them; an empty value is an empty list.
func parsePorts(v string) ([]int32, error) {
	var ports []int32
	for _, f := range splitList(v) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q is not a port; must be ports from 1 to 65535 separated by commas, such as 8081,9000", f)
		}
		ports = append(ports, int32(n))
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

// parseCIDRs reads a comma-separated list of IPv4 or IPv6 CIDRs, sorted and
// without repeats. As in skein-init (and iptables), a bare address is a CIDR
// of that address alone and host bits are cleared: "10.1.2.3/8" is written
// 10.0.0.0/8.
func parseCIDRs(v string) ([]string, error) {
	var prefixes []netip.Prefix
	for _, f := range splitList(v) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not a CIDR; must be CIDRs separated by commas, such as 10.0.0.0/8,fd00::/8", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		prefixes = append(prefixes, p.Masked())
	}
	slices.SortFunc(prefixes, func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	})
	prefixes = slices.Compact(prefixes)
	var out []string
	for _, p := range prefixes {
		out = append(out, p.String())
	}
	return out, nil
}

// splitList splits a comma-separated value into its non-empty items,
// trimmed of space.
func splitList(v string) []string {
	var items []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			items = append(items, f)
		}
	}
	return items
}

// injectSetting is the skein.io/inject setting of an object: the
// annotation's value if it has one, else the label's, else "". from says
// which it was.
func injectSetting(annotations, labels map[string]string) (value, from string) {
	if v, ok := annotations[AnnotationInject]; ok {
		return v, "annotation"
	}
	if v, ok := labels[AnnotationInject]; ok {
		return v, "label"
	}
	return "", ""
}

// nameConflict reports the first container or volume of the pod whose name
// Mutate would add, as an error, or nil.
func nameConflict(pod *corev1.Pod) error {
	ours := []string{ProxyContainerName, InitContainerName}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if slices.Contains(ours, c.Name) {
				return fmt.Errorf("the pod already has a container named %s, a name Skein's injection adds; rename it", c.Name)
			}
		}
	}
	ourVolumes := []string{TokenVolumeName, ProxyDataVolumeName, XtablesLockVolumeName}
	for _, v := range pod.Spec.Volumes {
		if slices.Contains(ourVolumes, v.Name) {
			return fmt.Errorf("the pod already has a volume named %s, a name Skein's injection adds; rename it", v.Name)
		}
	}
	return nil
}

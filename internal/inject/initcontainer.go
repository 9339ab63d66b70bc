package inject

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// initContainer is skein-init: it installs the nat rules that send the
// pod's TCP traffic through the proxy, then exits. It runs as root because
// iptables needs NET_ADMIN (and NET_RAW) in its effective set, and has
// nothing else: no other capability, no privilege escalation, a read-only
// root filesystem with a writable /run for the iptables lock.
func initContainer(cfg Config, o podOptions) corev1.Container {
	p := cfg.Ports
	// The health and metrics ports are reached from outside the pod (the
	// kubelet, Prometheus) and must never be captured.
	inbound := append([]int32{p.Health, p.Metrics}, o.excludeInboundPorts...)
	args := []string{
		"--proxy-uid=" + strconv.FormatInt(cfg.ProxyUID, 10),
		"--proxy-gid=" + strconv.FormatInt(cfg.ProxyUID, 10),
		"--inbound-port=" + itoa(p.Inbound),
		"--outbound-port=" + itoa(p.Outbound),
		"--exclude-inbound-ports=" + joinPorts(inbound),
	}
	if len(o.excludeOutboundPorts) > 0 {
		args = append(args, "--exclude-outbound-ports="+joinPorts(o.excludeOutboundPorts))
	}
	if len(o.excludeOutboundCIDRs) > 0 {
		args = append(args, "--exclude-outbound-cidrs="+strings.Join(o.excludeOutboundCIDRs, ","))
	}
	if len(o.includeOutboundCIDRs) > 0 {
		args = append(args, "--include-outbound-cidrs="+strings.Join(o.includeOutboundCIDRs, ","))
	}
	return corev1.Container{
		Name:         InitContainerName,
		Image:        cfg.InitImage,
		Command:      []string{"/skein-init"},
		Args:         args,
		Resources:    *cfg.InitResources.DeepCopy(),
		VolumeMounts: []corev1.VolumeMount{{Name: XtablesLockVolumeName, MountPath: "/run"}},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](0),
			RunAsGroup:               ptr.To[int64](0),
			RunAsNonRoot:             ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Privileged:               ptr.To(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

// joinPorts writes ports sorted, without repeats, separated by commas.
func joinPorts(ports []int32) string {
	ports = slices.Clone(ports)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	s := make([]string, len(ports))
	for i, n := range ports {
		s[i] = itoa(n)
	}
	return strings.Join(s, ",")
}

func itoa(n int32) string { return strconv.FormatInt(int64(n), 10) }

package inject

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// ProxyReadyPath is the proxy's readiness endpoint on the health port.
const ProxyReadyPath = "/healthz/ready"

// proxyContainer is the skein-proxy container. native makes it a native
// sidecar; otherwise it carries the postStart hook that holds the app's
// containers until the proxy is ready. withProbes passes the app's original
// probes in through the downward API.
func proxyContainer(cfg Config, res corev1.ResourceRequirements, native, withProbes bool) corev1.Container {
	p := cfg.Ports
	ready := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: ProxyReadyPath, Port: intstr.FromInt32(p.Health), Scheme: corev1.URISchemeHTTP,
			}},
			TimeoutSeconds: 3, PeriodSeconds: period, FailureThreshold: failures,
		}
	}
	c := corev1.Container{
		Name:  ProxyContainerName,
		Image: cfg.ProxyImage,
		Ports: []corev1.ContainerPort{
			{Name: "skein-outbound", ContainerPort: p.Outbound, Protocol: corev1.ProtocolTCP},
			{Name: "skein-inbound", ContainerPort: p.Inbound, Protocol: corev1.ProtocolTCP},
			{Name: "skein-admin", ContainerPort: p.Admin, Protocol: corev1.ProtocolTCP},
			{Name: "skein-health", ContainerPort: p.Health, Protocol: corev1.ProtocolTCP},
			{Name: "skein-metrics", ContainerPort: p.Metrics, Protocol: corev1.ProtocolTCP},
		},
		Env: []corev1.EnvVar{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			fieldEnv("POD_IP", "status.podIP"),
			fieldEnv("POD_IPS", "status.podIPs"),
			fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
			fieldEnv("NODE_NAME", "spec.nodeName"),
			{Name: "SKEIN_TRUST_DOMAIN", Value: cfg.TrustDomain},
			{Name: "SKEIN_XDS_ADDRESS", Value: cfg.XDSAddress},
		},
		Resources: res,
		VolumeMounts: []corev1.VolumeMount{
			{Name: TokenVolumeName, MountPath: TokenDir, ReadOnly: true},
			{Name: ProxyDataVolumeName, MountPath: ProxyDataDir},
		},
		// Readiness as Istio's: a proxy that stops answering for a minute
		// takes the pod out of its Services.
		ReadinessProbe: ready(15, 4),
		// Up to ten minutes to get a first configuration, checked every
		// second so that the app starts as soon as the proxy is ready.
		StartupProbe: ready(1, 600),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To(cfg.ProxyUID),
			RunAsGroup:               ptr.To(cfg.ProxyUID),
			RunAsNonRoot:             ptr.To(true),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Privileged:               ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if withProbes {
		c.Env = append(c.Env, corev1.EnvVar{Name: "SKEIN_APP_PROBES", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['" + AnnotationOriginalProbes + "']"},
		}})
	}
	if native {
		c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	} else {
		// The kubelet starts a pod's containers in order and waits for each
		// one's postStart hook: the app starts after the proxy is ready.
		// An exec hook, because an httpGet hook is tried once and would
		// fail on a proxy still starting.
		c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"/skein-proxy", "wait"}},
		}}
	}
	return c
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: path},
	}}
}

// proxyVolumes are the volumes the proxy and skein-init mount.
func proxyVolumes() []corev1.Volume {
	return []corev1.Volume{
		{Name: TokenVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: TokenAudience, ExpirationSeconds: ptr.To[int64](TokenExpirationSeconds), Path: "token",
			}}},
		}}},
		{Name: ProxyDataVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium: corev1.StorageMediumMemory,
		}}},
		{Name: XtablesLockVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
}

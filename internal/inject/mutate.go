package inject

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// DefaultContainerAnnotation tells kubectl logs and exec which container to
// pick; Mutate sets it when it puts the proxy first.
const DefaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// Status is the JSON of the status annotation: what Mutate added, so that
// an injected pod can be recognised and explained.
type Status struct {
	// Version is the injector's version (Config.Version).
	Version string `json:"version"`
	// InitContainers are the init containers Mutate added, in order.
	InitContainers []string `json:"initContainers"`
	// Containers are the containers Mutate added; empty with a native sidecar.
	Containers []string `json:"containers,omitempty"`
	// Volumes are the volumes Mutate added.
	Volumes []string `json:"volumes"`
}

// Mutate returns pod with Skein's sidecar injected, as the package comment
// describes; pod itself is not changed. The same pod and Config always give
// the same result. A pod that already carries the status annotation comes
// back as an unchanged copy. Invalid annotations are an error naming each
// (*AnnotationError), as is a container or volume already named like one
// Mutate adds. Mutate does not ask whether the pod should be injected: that
// is Decide's job.
func Mutate(pod *corev1.Pod, cfg Config) (*corev1.Pod, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	out := pod.DeepCopy()
	if _, ok := pod.Annotations[AnnotationStatus]; ok {
		return out, nil
	}
	o, err := podOptionsOf(pod, cfg)
	if err != nil {
		return nil, fmt.Errorf("inject pod %s: %w", podRef(pod), err)
	}
	if err := nameConflict(pod); err != nil {
		return nil, fmt.Errorf("inject pod %s: %w", podRef(pod), err)
	}

	var probes map[string]AppProbe
	if o.rewriteProbes {
		probes = rewriteProbes(out.Spec.Containers, cfg.Ports.Health)
	}
	proxy := proxyContainer(cfg, o.resources, o.native, len(probes) > 0)
	status := Status{Version: cfg.Version, InitContainers: []string{InitContainerName}}
	// skein-init runs before anything else, so that no other container
	// (the app's init containers included) sends a packet uncaptured.
	if o.native {
		out.Spec.InitContainers = append([]corev1.Container{initContainer(cfg, o), proxy}, out.Spec.InitContainers...)
		status.InitContainers = append(status.InitContainers, ProxyContainerName)
	} else {
		out.Spec.InitContainers = append([]corev1.Container{initContainer(cfg, o)}, out.Spec.InitContainers...)
		if _, ok := out.Annotations[DefaultContainerAnnotation]; !ok && len(out.Spec.Containers) > 0 {
			setAnnotation(out, DefaultContainerAnnotation, out.Spec.Containers[0].Name)
		}
		out.Spec.Containers = append([]corev1.Container{proxy}, out.Spec.Containers...)
		status.Containers = []string{ProxyContainerName}
	}
	for _, v := range proxyVolumes() {
		out.Spec.Volumes = append(out.Spec.Volumes, v)
		status.Volumes = append(status.Volumes, v.Name)
	}

	if len(probes) > 0 {
		b, err := json.Marshal(probes)
		if err != nil {
			return nil, fmt.Errorf("inject pod %s: encode its probes: %w", podRef(pod), err)
		}
		setAnnotation(out, AnnotationOriginalProbes, string(b))
	}
	b, err := json.Marshal(status)
	if err != nil {
		return nil, fmt.Errorf("inject pod %s: encode status: %w", podRef(pod), err)
	}
	setAnnotation(out, AnnotationStatus, string(b))
	return out, nil
}

func setAnnotation(pod *corev1.Pod, key, value string) {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[key] = value
}

// podRef names a pod in messages; at admission a pod of a ReplicaSet has
// only a generateName.
func podRef(pod *corev1.Pod) string {
	name := pod.Name
	if name == "" && pod.GenerateName != "" {
		name = pod.GenerateName + "*"
	}
	if pod.Namespace == "" {
		return name
	}
	return pod.Namespace + "/" + name
}

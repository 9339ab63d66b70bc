package mesh

import corev1 "k8s.io/api/core/v1"

// NodeID is the xDS node ID of the sidecar in pod, in Istio's form:
// "sidecar~<podIP>~<pod>.<namespace>~<namespace>.svc.cluster.local".
// The IP is empty while the pod has none.
func NodeID(pod *corev1.Pod) string {
	return "sidecar~" + pod.Status.PodIP + "~" + pod.Name + "." + pod.Namespace + "~" + pod.Namespace + ".svc." + DefaultClusterDomain
}

// ProxyFromPod is the proxy that runs in pod, as the translator sees it.
func ProxyFromPod(pod *corev1.Pod) Proxy {
	return Proxy{ID: NodeID(pod), Namespace: pod.Namespace, Pod: pod.Name, IP: pod.Status.PodIP}
}

package inject

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestMarkSkipped(t *testing.T) {
	enabled := map[string]string{AnnotationInject: InjectEnabled}
	cases := []struct {
		name string
		// ns is the pod's namespace.
		ns *corev1.Namespace
		// pod is the pod as admitted.
		pod *corev1.Pod
		// want is the skipped annotation's value; "" means none.
		want string
	}{
		{name: "host network in an enabled namespace", ns: namespace("shop", enabled, nil), pod: pod(hostNetwork), want: string(HostNetwork)},
		{name: "opted out in an enabled namespace", ns: namespace("shop", nil, enabled),
			pod: pod(annotate(AnnotationInject, InjectDisabled)), want: string(PodOptedOut)},
		{name: "opted out in a plain namespace: the pod spoke", ns: namespace("shop", nil, nil),
			pod: pod(label(AnnotationInject, InjectDisabled)), want: string(PodOptedOut)},
		{name: "plain namespace, silent pod", ns: namespace("shop", nil, nil), pod: pod()},
		{name: "unknown namespace, silent pod", pod: pod()},
		{name: "namespace disabled", ns: namespace("shop", map[string]string{AnnotationInject: InjectDisabled}, nil), pod: pod()},
		{name: "already injected", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationStatus, "{}"))},
		{name: "injected", ns: namespace("shop", enabled, nil), pod: pod()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.pod, tc.ns, DefaultConfig())
			got := MarkSkipped(tc.pod, tc.ns, d)
			if v, ok := got.Annotations[AnnotationSkipped]; v != tc.want || ok != (tc.want != "") {
				t.Errorf("%s = %q (set %v) after %s, want %q", AnnotationSkipped, v, ok, d.Reason, tc.want)
			}
			if _, ok := tc.pod.Annotations[AnnotationSkipped]; ok {
				t.Errorf("MarkSkipped changed its argument")
			}
			if tc.want == "" && got != tc.pod {
				t.Errorf("a pod left alone should come back as itself")
			}
		})
	}
}

package inject

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDecide(t *testing.T) {
	enabled := map[string]string{AnnotationInject: InjectEnabled}
	cases := []struct {
		name string
		// ns is the namespace; nil is a namespace Decide knows nothing about.
		ns *corev1.Namespace
		// pod is the pod; its namespace is "shop" unless it sets one.
		pod *corev1.Pod
		// cfg changes DefaultConfig.
		cfg func(*Config)
		// want is the reason.
		want Reason
		// msg are parts the message must contain, such as the annotation it names.
		msg []string
	}{
		{name: "namespace annotation", ns: namespace("shop", enabled, nil), pod: pod(), want: Injected,
			msg: []string{"namespace shop has annotation skein.io/inject: enabled"}},
		{name: "namespace label", ns: namespace("shop", nil, enabled), pod: pod(), want: Injected,
			msg: []string{"namespace shop has label skein.io/inject: enabled"}},
		{name: "namespace annotation disabled wins over label enabled",
			ns: namespace("shop", map[string]string{AnnotationInject: InjectDisabled}, enabled), pod: pod(),
			want: NamespaceNotEnabled, msg: []string{`annotation skein.io/inject: "disabled"`}},
		{name: "namespace without the annotation", ns: namespace("shop", nil, nil), pod: pod(), want: NamespaceNotEnabled,
			msg: []string{"namespace shop has no annotation or label skein.io/inject: enabled"}},
		{name: "namespace unknown", ns: nil, pod: pod(), want: NamespaceNotEnabled},
		{name: "namespace value other than enabled", ns: namespace("shop", map[string]string{AnnotationInject: "true"}, nil),
			pod: pod(), want: NamespaceNotEnabled, msg: []string{`"true"`, `only "enabled"`}},
		{name: "pod annotation opts in", ns: namespace("shop", nil, nil), pod: pod(annotate(AnnotationInject, InjectEnabled)),
			want: PodOptedIn, msg: []string{`annotation skein.io/inject is "enabled"`}},
		{name: "pod label opts in", ns: namespace("shop", nil, nil), pod: pod(label(AnnotationInject, InjectEnabled)),
			want: PodOptedIn, msg: []string{`label skein.io/inject is "enabled"`}},
		{name: "pod annotation opts out", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationInject, InjectDisabled)),
			want: PodOptedOut, msg: []string{`annotation skein.io/inject is "disabled"`}},
		{name: "pod label opts out", ns: namespace("shop", enabled, nil), pod: pod(label(AnnotationInject, InjectDisabled)),
			want: PodOptedOut},
		{name: "pod annotation wins over pod label", ns: namespace("shop", nil, nil),
			pod: pod(label(AnnotationInject, InjectDisabled), annotate(AnnotationInject, InjectEnabled)), want: PodOptedIn},
		{name: "pod opt-in in an enabled namespace is plain injection", ns: namespace("shop", enabled, nil),
			pod: pod(annotate(AnnotationInject, InjectEnabled)), want: Injected},
		{name: "host network", ns: namespace("shop", enabled, nil), pod: pod(hostNetwork), want: HostNetwork,
			msg: []string{"spec.hostNetwork"}},
		{name: "host network wins over pod opt-in", ns: namespace("shop", nil, nil),
			pod: pod(hostNetwork, annotate(AnnotationInject, InjectEnabled)), want: HostNetwork},
		{name: "host network in a namespace not enabled", ns: namespace("shop", nil, nil), pod: pod(hostNetwork),
			want: NamespaceNotEnabled},
		{name: "already injected", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationStatus, `{"version":"dev"}`)),
			want: AlreadyInjected, msg: []string{AnnotationStatus}},
		{name: "already injected wins over invalid annotations", ns: namespace("shop", enabled, nil),
			pod: pod(annotate(AnnotationStatus, "{}"), annotate(AnnotationProxyCPU, "lots")), want: AlreadyInjected},
		{name: "kube-system, even opted in", ns: namespace("kube-system", enabled, nil),
			pod: pod(inNamespace("kube-system"), annotate(AnnotationInject, InjectEnabled)), want: ControlPlaneNamespace,
			msg: []string{"kube-system"}},
		{name: "kube-public", ns: namespace("kube-public", enabled, nil), pod: pod(inNamespace("kube-public")), want: ControlPlaneNamespace},
		{name: "kube-node-lease", ns: namespace("kube-node-lease", enabled, nil), pod: pod(inNamespace("kube-node-lease")), want: ControlPlaneNamespace},
		{name: "the operator's namespace", ns: namespace("skein-system", enabled, nil), pod: pod(inNamespace("skein-system")),
			want: ControlPlaneNamespace},
		{name: "the operator's namespace when configured elsewhere", ns: namespace("mesh-ops", enabled, nil),
			pod: pod(inNamespace("mesh-ops")), cfg: func(c *Config) { c.OperatorNamespace = "mesh-ops" }, want: ControlPlaneNamespace},
		{name: "skein-system is ordinary when the operator lives elsewhere", ns: namespace("skein-system", enabled, nil),
			pod: pod(inNamespace("skein-system")), cfg: func(c *Config) { c.OperatorNamespace = "mesh-ops" }, want: Injected},
		{name: "pod without a namespace takes the namespace object's", ns: namespace("kube-system", enabled, nil),
			pod: pod(inNamespace("")), want: ControlPlaneNamespace},
		{name: "pod inject value neither enabled nor disabled", ns: namespace("shop", enabled, nil),
			pod: pod(annotate(AnnotationInject, "true")), want: InvalidAnnotation,
			msg: []string{`annotation "skein.io/inject"`, `"true"`, `"enabled" or "disabled"`}},
		{name: "pod inject value invalid in a namespace not enabled", ns: namespace("shop", nil, nil),
			pod: pod(label(AnnotationInject, "yes")), want: InvalidAnnotation, msg: []string{`label "skein.io/inject"`}},
		{name: "bad CPU request", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationProxyCPU, "lots")),
			want: InvalidAnnotation, msg: []string{`annotation "skein.io/proxy-cpu": invalid value "lots"`}},
		{name: "zero memory request", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationProxyMemory, "0")),
			want: InvalidAnnotation, msg: []string{AnnotationProxyMemory, "positive"}},
		{name: "memory request above the default limit", ns: namespace("shop", enabled, nil),
			pod: pod(annotate(AnnotationProxyMemory, "512Mi")), want: InvalidAnnotation,
			msg: []string{`annotation "skein.io/proxy-memory"`, "default memory limit 256Mi", AnnotationProxyMemoryLimit}},
		{name: "CPU limit below the default request", ns: namespace("shop", enabled, nil),
			pod: pod(annotate(AnnotationProxyCPULimit, "5m")), want: InvalidAnnotation,
			msg: []string{`annotation "skein.io/proxy-cpu-limit"`, "request 10m"}},
		{name: "request raised with its limit", ns: namespace("shop", enabled, nil),
			pod: pod(annotate(AnnotationProxyMemory, "512Mi"), annotate(AnnotationProxyMemoryLimit, "1Gi")), want: Injected},
		{name: "bad native-sidecar", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationNativeSidecar, "yes")),
			want: InvalidAnnotation, msg: []string{AnnotationNativeSidecar, `"true" or "false"`}},
		{name: "bad rewrite-probes", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationRewriteProbes, "False")),
			want: InvalidAnnotation, msg: []string{AnnotationRewriteProbes}},
		{name: "bad inbound port", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationExcludeInboundPorts, "8080,70000")),
			want: InvalidAnnotation, msg: []string{AnnotationExcludeInboundPorts, `"70000" is not a port`}},
		{name: "bad outbound port", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationExcludeOutboundPorts, "0")),
			want: InvalidAnnotation, msg: []string{AnnotationExcludeOutboundPorts}},
		{name: "bad exclude CIDR", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationExcludeOutboundCIDRs, "10.0.0.0/33")),
			want: InvalidAnnotation, msg: []string{AnnotationExcludeOutboundCIDRs, `"10.0.0.0/33" is not a CIDR`}},
		{name: "include CIDRs empty", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationIncludeOutboundCIDRs, " ")),
			want: InvalidAnnotation, msg: []string{AnnotationIncludeOutboundCIDRs, `"*"`}},
		{name: "include CIDRs star", ns: namespace("shop", enabled, nil), pod: pod(annotate(AnnotationIncludeOutboundCIDRs, "*")),
			want: Injected},
		{name: "every bad annotation is named, in order", ns: namespace("shop", enabled, nil),
			pod:  pod(annotate(AnnotationProxyMemory, "x"), annotate(AnnotationExcludeInboundPorts, "y"), annotate(AnnotationProxyCPU, "z")),
			want: InvalidAnnotation,
			msg:  []string{`"skein.io/exclude-inbound-ports": invalid value "y"`, `; annotation "skein.io/proxy-cpu"`, `; annotation "skein.io/proxy-memory"`}},
		{name: "invalid annotations do not matter to an opted-out pod", ns: namespace("shop", enabled, nil),
			pod: pod(annotate(AnnotationInject, InjectDisabled), annotate(AnnotationProxyCPU, "lots")), want: PodOptedOut},
		{name: "invalid annotations do not matter outside the mesh", ns: namespace("shop", nil, nil),
			pod: pod(annotate(AnnotationProxyCPU, "lots")), want: NamespaceNotEnabled},
		{name: "a container named skein-proxy", ns: namespace("shop", enabled, nil),
			pod: pod(func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: ProxyContainerName})
			}),
			want: NameConflict, msg: []string{"container named skein-proxy"}},
		{name: "an init container named skein-init", ns: namespace("shop", enabled, nil),
			pod:  pod(func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{{Name: InitContainerName}} }),
			want: NameConflict, msg: []string{"container named skein-init"}},
		{name: "a volume named skein-token", ns: namespace("shop", enabled, nil),
			pod:  pod(func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: TokenVolumeName}} }),
			want: NameConflict, msg: []string{"volume named skein-token"}},
	}
	seen := map[Reason]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			d := Decide(tc.pod, tc.ns, cfg)
			seen[d.Reason] = true
			if d.Reason != tc.want {
				t.Fatalf("reason %s (%s), want %s", d.Reason, d.Message, tc.want)
			}
			if wantInject := tc.want == Injected || tc.want == PodOptedIn; d.Inject != wantInject {
				t.Errorf("Inject = %v with reason %s", d.Inject, d.Reason)
			}
			if wantRefused := tc.want == InvalidAnnotation || tc.want == NameConflict; d.Refused() != wantRefused {
				t.Errorf("Refused() = %v with reason %s", d.Refused(), d.Reason)
			}
			if d.Message == "" || strings.Contains(d.Message, "\n") {
				t.Errorf("message %q is not one line", d.Message)
			}
			for _, m := range tc.msg {
				if !strings.Contains(d.Message, m) {
					t.Errorf("message %q does not contain %q", d.Message, m)
				}
			}
		})
	}
	for _, r := range declaredReasons(t) {
		if !seen[r] {
			t.Errorf("no case gives reason %s", r)
		}
	}
}

// declaredReasons are the Reason constants of decide.go, read from its
// source so that a new reason without a case fails TestDecide.
func declaredReasons(t *testing.T) []Reason {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "decide.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []Reason
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Reason" {
				for _, v := range vs.Values {
					lit := v.(*ast.BasicLit)
					reasons = append(reasons, Reason(strings.Trim(lit.Value, `"`)))
				}
			}
		}
	}
	if len(reasons) < 9 {
		t.Fatalf("found only %d Reason constants in decide.go: %v", len(reasons), reasons)
	}
	return reasons
}

func TestNativeSidecarsSupported(t *testing.T) {
	cases := []struct {
		name         string
		major, minor string
		want         bool
	}{
		{name: "1.28", major: "1", minor: "28", want: false},
		{name: "1.29", major: "1", minor: "29", want: true},
		{name: "1.37", major: "1", minor: "37", want: true},
		{name: "a provider's 1.29+", major: "1", minor: "29+", want: true},
		{name: "a provider's 1.27+", major: "1", minor: "27+", want: false},
		{name: "2.0", major: "2", minor: "0", want: true},
		{name: "unreadable", major: "", minor: "", want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NativeSidecarsSupported(tc.major, tc.minor); got != tc.want {
				t.Errorf("NativeSidecarsSupported(%q, %q) = %v, want %v", tc.major, tc.minor, got, tc.want)
			}
		})
	}
}

func namespace(name string, annotations, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations, Labels: labels}}
}

// pod is a one-container pod in namespace shop, changed by each option.
func pod(opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "registry.example/web:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func annotate(key, value string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[key] = value
	}
}

func label(key, value string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels[key] = value
	}
}

func inNamespace(ns string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Namespace = ns }
}

func hostNetwork(p *corev1.Pod) { p.Spec.HostNetwork = true }

package inject

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/skeinmesh/skein/internal/golden"
)

// probedPod has every kind of probe and annotations, so that a change to
// any part of the input would show.
func probedPod() *corev1.Pod {
	return pod(
		annotate(AnnotationExcludeOutboundCIDRs, "10.0.0.0/8"),
		annotate(AnnotationProxyCPU, "50m"),
		func(p *corev1.Pod) {
			c := &p.Spec.Containers[0]
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/livez", Port: intstr.FromString("http")}}}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				GRPC: &corev1.GRPCAction{Port: 9090}}}
			c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}}
			p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "registry.example/migrate:1"}}
		})
}

func TestMutateLeavesItsInputAlone(t *testing.T) {
	for _, native := range []bool{true, false} {
		in := probedPod()
		before := in.DeepCopy()
		cfg := DefaultConfig()
		cfg.NativeSidecars = native
		out, err := Mutate(in, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, before) {
			t.Errorf("native=%v: Mutate changed its input", native)
		}
		if reflect.DeepEqual(out, before) {
			t.Errorf("native=%v: Mutate returned its input unchanged", native)
		}
		// The result shares no memory with the input: changing it leaves
		// the input as it was.
		out.Annotations[AnnotationProxyCPU] = "1"
		out.Spec.Containers[len(out.Spec.Containers)-1].LivenessProbe.HTTPGet.Path = "/changed"
		if !reflect.DeepEqual(in, before) {
			t.Errorf("native=%v: Mutate's result shares memory with its input", native)
		}
	}
}

func TestMutateIsIdempotent(t *testing.T) {
	for _, native := range []bool{true, false} {
		cfg := DefaultConfig()
		cfg.NativeSidecars = native
		ns := namespace("shop", map[string]string{AnnotationInject: InjectEnabled}, nil)
		once, err := Mutate(probedPod(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if d := Decide(once, ns, cfg); d.Reason != AlreadyInjected || d.Inject {
			t.Errorf("native=%v: Decide of an injected pod = %+v, want AlreadyInjected", native, d)
		}
		twice, err := Mutate(once, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(once, twice) {
			t.Errorf("native=%v: Mutate(Mutate(p)) differs from Mutate(p):\n%s", native, golden.LineDiff(toYAML(t, once), toYAML(t, twice)))
		}
	}
}

func TestMutateIsDeterministic(t *testing.T) {
	in := probedPod()
	annotate(AnnotationExcludeInboundPorts, "9000,8081")(in)
	annotate(AnnotationProxyMemoryLimit, "300Mi")(in)
	first, err := Mutate(in, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := toYAML(t, first)
	for range 50 {
		again, err := Mutate(in, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		if got := toYAML(t, again); got != want {
			t.Fatalf("two runs on the same pod differ:\n%s", golden.LineDiff(want, got))
		}
	}
}

func TestMutateRefusesBadAnnotations(t *testing.T) {
	cases := []struct {
		name string
		// annotations are the pod's.
		annotations map[string]string
		// want are the annotations the error must name, in order.
		want []string
	}{
		{name: "CPU", annotations: map[string]string{AnnotationProxyCPU: "fast"}, want: []string{AnnotationProxyCPU}},
		{name: "negative memory", annotations: map[string]string{AnnotationProxyMemory: "-1Mi"}, want: []string{AnnotationProxyMemory}},
		{name: "CPU limit", annotations: map[string]string{AnnotationProxyCPULimit: "1 core"}, want: []string{AnnotationProxyCPULimit}},
		{name: "memory limit below the request", annotations: map[string]string{AnnotationProxyMemory: "100Mi", AnnotationProxyMemoryLimit: "50Mi"},
			want: []string{AnnotationProxyMemoryLimit}},
		{name: "native sidecar", annotations: map[string]string{AnnotationNativeSidecar: "1"}, want: []string{AnnotationNativeSidecar}},
		{name: "rewrite probes", annotations: map[string]string{AnnotationRewriteProbes: "no"}, want: []string{AnnotationRewriteProbes}},
		{name: "inbound port range", annotations: map[string]string{AnnotationExcludeInboundPorts: "8000-8100"}, want: []string{AnnotationExcludeInboundPorts}},
		{name: "outbound port", annotations: map[string]string{AnnotationExcludeOutboundPorts: "65536"}, want: []string{AnnotationExcludeOutboundPorts}},
		{name: "CIDR with a zone", annotations: map[string]string{AnnotationExcludeOutboundCIDRs: "fe80::1%eth0"}, want: []string{AnnotationExcludeOutboundCIDRs}},
		{name: "include CIDR", annotations: map[string]string{AnnotationIncludeOutboundCIDRs: "cluster"}, want: []string{AnnotationIncludeOutboundCIDRs}},
		{name: "several, sorted", annotations: map[string]string{AnnotationProxyMemory: "?", AnnotationExcludeOutboundPorts: "?", AnnotationNativeSidecar: "?"},
			want: []string{AnnotationExcludeOutboundPorts, AnnotationNativeSidecar, AnnotationProxyMemory}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pod()
			p.Annotations = tc.annotations
			out, err := Mutate(p, DefaultConfig())
			if err == nil {
				t.Fatalf("Mutate accepted %v", tc.annotations)
			}
			if out != nil {
				t.Errorf("Mutate returned a pod with its error")
			}
			if got := annotationsNamed(err); !slices.Equal(got, tc.want) {
				t.Errorf("error names %v, want %v (error: %v)", got, tc.want, err)
			}
			for _, key := range tc.want {
				if !strings.Contains(err.Error(), `"`+key+`"`) {
					t.Errorf("error %q does not quote %q", err, key)
				}
			}
			if !strings.Contains(err.Error(), "shop/web") {
				t.Errorf("error %q does not name the pod", err)
			}
		})
	}
}

// annotationsNamed lists the annotations of the *AnnotationErrors in err.
func annotationsNamed(err error) []string {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var keys []string
		for _, e := range joined.Unwrap() {
			keys = append(keys, annotationsNamed(e)...)
		}
		return keys
	}
	var ae *AnnotationError
	if errors.As(err, &ae) {
		return []string{ae.Annotation}
	}
	return nil
}

func TestMutateAcceptsLooseLists(t *testing.T) {
	p := pod(
		annotate(AnnotationExcludeInboundPorts, " 9000 ,, 8081,9000,"),
		annotate(AnnotationExcludeOutboundPorts, ""),
		annotate(AnnotationExcludeOutboundCIDRs, "10.1.2.3/8, 192.168.0.7,::1"),
		annotate(AnnotationIncludeOutboundCIDRs, " * "),
	)
	out, err := Mutate(p, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--proxy-uid=7117", "--proxy-gid=7117", "--inbound-port=15006", "--outbound-port=15001",
		"--exclude-inbound-ports=8081,9000,15020,15090", "--exclude-outbound-cidrs=10.0.0.0/8,192.168.0.7/32,::1/128"}
	if got := out.Spec.InitContainers[0].Args; !slices.Equal(got, want) {
		t.Errorf("skein-init args\n%q\nwant\n%q", got, want)
	}
}

func TestMutateRefusesNameConflicts(t *testing.T) {
	p := pod(func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: ProxyDataVolumeName}} })
	if _, err := Mutate(p, DefaultConfig()); err == nil || !strings.Contains(err.Error(), "volume named skein-proxy-data") {
		t.Errorf("Mutate of a pod with a volume named %s: error %v", ProxyDataVolumeName, err)
	}
}

func TestMutateRefusesBadConfig(t *testing.T) {
	cases := []struct {
		name string
		// change breaks DefaultConfig.
		change func(*Config)
	}{
		{name: "no proxy image", change: func(c *Config) { c.ProxyImage = "" }},
		{name: "no init image", change: func(c *Config) { c.InitImage = "" }},
		{name: "root proxy", change: func(c *Config) { c.ProxyUID = 0 }},
		{name: "no health port", change: func(c *Config) { c.Ports.Health = 0 }},
		{name: "no xDS address", change: func(c *Config) { c.XDSAddress = "" }},
		{name: "request above limit", change: func(c *Config) {
			c.ProxyResources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("20Mi")}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.change(&cfg)
			if _, err := Mutate(pod(), cfg); err == nil || !strings.HasPrefix(err.Error(), "inject config:") {
				t.Errorf("Mutate with a bad config: error %v", err)
			}
		})
	}
}

// TestInjectedPodShape checks, on every injected golden, what the goldens
// show but a careless REFRESH_GOLDEN could break unnoticed: the order of
// the containers, how the proxy is held until ready, and the security
// contexts.
func TestInjectedPodShape(t *testing.T) {
	goldens, _ := filepath.Glob("testdata/*.golden.yaml")
	checked := 0
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte("(inject)")) {
			continue
		}
		checked++
		var p corev1.Pod
		if err := yaml.UnmarshalStrict(data, &p); err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		t.Run(filepath.Base(g), func(t *testing.T) { checkShape(t, &p) })
	}
	if checked < 16 {
		t.Errorf("checked %d injected goldens, want at least 16", checked)
	}
}

func checkShape(t *testing.T, p *corev1.Pod) {
	inits, containers := p.Spec.InitContainers, p.Spec.Containers
	if len(inits) == 0 || inits[0].Name != InitContainerName {
		t.Fatalf("skein-init is not the first init container")
	}
	init := inits[0]
	sc := init.SecurityContext
	if *sc.RunAsUser != 0 || *sc.RunAsNonRoot || *sc.AllowPrivilegeEscalation || *sc.Privileged ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("skein-init's security context is %+v", sc)
	}
	var proxy *corev1.Container
	switch {
	case len(inits) > 1 && inits[1].Name == ProxyContainerName:
		proxy = &inits[1]
		if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("the native sidecar has no restartPolicy Always")
		}
		if proxy.Lifecycle != nil {
			t.Errorf("the native sidecar has a lifecycle hook")
		}
		if proxy.StartupProbe == nil {
			t.Errorf("the native sidecar has no startup probe, so the app would not wait for it")
		}
	case containers[0].Name == ProxyContainerName:
		proxy = &containers[0]
		if proxy.RestartPolicy != nil {
			t.Errorf("the classic sidecar has a restartPolicy")
		}
		if h := proxy.Lifecycle; h == nil || h.PostStart == nil || h.PostStart.Exec == nil ||
			!slices.Equal(h.PostStart.Exec.Command, []string{"/skein-proxy", "wait"}) {
			t.Errorf("the classic sidecar does not wait for the proxy in postStart: %+v", h)
		}
		if p.Annotations[DefaultContainerAnnotation] == "" {
			t.Errorf("no %s annotation, so kubectl would pick the proxy", DefaultContainerAnnotation)
		}
	default:
		t.Fatalf("skein-proxy is neither the second init container nor the first container")
	}
	sc = proxy.SecurityContext
	if *sc.RunAsUser != 7117 || *sc.RunAsGroup != 7117 || !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem ||
		*sc.AllowPrivilegeEscalation || sc.Capabilities.Add != nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("skein-proxy's security context is %+v", sc)
	}
	var status Status
	if err := yaml.Unmarshal([]byte(p.Annotations[AnnotationStatus]), &status); err != nil || status.Version == "" {
		t.Errorf("status annotation %q: %v", p.Annotations[AnnotationStatus], err)
	}
	// No app probe that the proxy took over may still point at the app.
	for _, c := range containers {
		for _, pr := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if pr != nil && pr.GRPC != nil && p.Annotations[AnnotationRewriteProbes] != "false" {
				t.Errorf("container %s still has a gRPC probe", c.Name)
			}
		}
	}
}

func toYAML(t *testing.T, p *corev1.Pod) string {
	t.Helper()
	b, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

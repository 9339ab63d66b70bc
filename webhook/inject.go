package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/skeinmesh/skein/internal/inject"
	"github.com/skeinmesh/skein/internal/meshconfig"
)

// Path is where the injection webhook is served; config/webhook's
// MutatingWebhookConfiguration calls it.
const Path = "/inject-pod"

// The webhook reads pods' namespaces from the manager's cache.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// PodInjector is the admission handler of pod creation.
type PodInjector struct {
	// Namespaces reads a pod's Namespace, normally from the manager's cache;
	// a namespace it does not find counts as not enabling injection.
	Namespaces client.Reader
	// Settings holds the mesh-wide settings, read at every request.
	Settings *meshconfig.Store
	// NativeSidecars is whether the API server runs native sidecars
	// (inject.NativeSidecarsSupported of its version).
	NativeSidecars bool
	// Decoder decodes the admitted pod.
	Decoder admission.Decoder
}

var _ admission.Handler = (*PodInjector)(nil)

// Handle answers one pod's admission request.
func (h *PodInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := h.Decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode pod: %w", err))
	}
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	ns := &corev1.Namespace{}
	if err := h.Namespaces.Get(ctx, client.ObjectKey{Name: pod.Namespace}, ns); err != nil {
		if !apierrors.IsNotFound(err) {
			return admission.Errored(http.StatusInternalServerError, fmt.Errorf("read namespace of pod %s: %w", klog.KObj(pod), err))
		}
		ns = nil
	}
	cfg := inject.NewConfig(h.Settings.Current())
	cfg.NativeSidecars = h.NativeSidecars

	d := inject.Decide(pod, ns, cfg)
	logf.FromContext(ctx).V(1).Info("Injection decided", "pod", klog.KObj(pod), "generateName", pod.GenerateName,
		"inject", d.Inject, "reason", d.Reason, "message", d.Message)
	var out *corev1.Pod
	switch {
	case d.Refused():
		return admission.Denied(d.Message)
	case d.Inject:
		var err error
		if out, err = inject.Mutate(pod, cfg); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
	default:
		out = inject.MarkSkipped(pod, ns, d)
	}
	return patch(pod, out, d)
}

// patch is the response that turns from into to. Both are marshalled the
// same way, so the patch holds only what Mutate or MarkSkipped changed.
func patch(from, to *corev1.Pod, d inject.Decision) admission.Response {
	if from == to {
		return admission.Allowed(string(d.Reason))
	}
	original, err := json.Marshal(from)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encode pod %s: %w", klog.KObj(from), err))
	}
	current, err := json.Marshal(to)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encode pod %s: %w", klog.KObj(to), err))
	}
	return admission.PatchResponseFromRaw(original, current)
}

// Register serves a PodInjector at Path on mgr's webhook server. It asks the
// API server its version once, here, to choose native or classic sidecars,
// and starts the manager's Namespace informer so that the first request
// does not wait for it.
func Register(ctx context.Context, mgr ctrl.Manager, settings *meshconfig.Store) error {
	dc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("make a discovery client: %w", err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return fmt.Errorf("read the API server's version: %w", err)
	}
	if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Namespace{}); err != nil {
		return fmt.Errorf("watch namespaces: %w", err)
	}
	native := inject.NativeSidecarsSupported(v.Major, v.Minor)
	mgr.GetLogger().WithName("webhook").Info("Serving the injection webhook", "path", Path,
		"apiServer", v.GitVersion, "nativeSidecars", native)
	mgr.GetWebhookServer().Register(Path, &admission.Webhook{Handler: &PodInjector{
		Namespaces:     mgr.GetCache(),
		Settings:       settings,
		NativeSidecars: native,
		Decoder:        admission.NewDecoder(mgr.GetScheme()),
	}})
	return nil
}

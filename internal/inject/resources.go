package inject

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// resourceAnnotation is one annotation that sets one of the proxy's
// requests or limits.
type resourceAnnotation struct {
	key   string
	name  corev1.ResourceName
	limit bool
	// example is a valid value, for messages.
	example string
}

var resourceAnnotations = []resourceAnnotation{
	{key: AnnotationProxyCPU, name: corev1.ResourceCPU, example: "100m"},
	{key: AnnotationProxyMemory, name: corev1.ResourceMemory, example: "64Mi"},
	{key: AnnotationProxyCPULimit, name: corev1.ResourceCPU, limit: true, example: "1"},
	{key: AnnotationProxyMemoryLimit, name: corev1.ResourceMemory, limit: true, example: "512Mi"},
}

// proxyResources is defaults with the pod's resource annotations applied.
// Each bad annotation is an *AnnotationError. A request above its limit is
// refused rather than raised or lowered silently: it names the limit's
// annotation when the pod set the limit, else the request's.
func proxyResources(annotations map[string]string, defaults corev1.ResourceRequirements) (corev1.ResourceRequirements, []error) {
	r := *defaults.DeepCopy()
	var errs []error
	for _, ra := range resourceAnnotations {
		v, ok := annotations[ra.key]
		if !ok {
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() <= 0 {
			errs = append(errs, &AnnotationError{Annotation: ra.key, Value: v,
				Reason: fmt.Sprintf("must be a positive %s quantity such as %s", ra.name, ra.example)})
			continue
		}
		list := &r.Requests
		if ra.limit {
			list = &r.Limits
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[ra.name] = q
	}
	if len(errs) > 0 {
		return r, errs
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[name]
		lim, hasLim := r.Limits[name]
		if !hasReq || !hasLim || req.Cmp(lim) <= 0 {
			continue
		}
		reqKey, limKey := AnnotationProxyCPU, AnnotationProxyCPULimit
		if name == corev1.ResourceMemory {
			reqKey, limKey = AnnotationProxyMemory, AnnotationProxyMemoryLimit
		}
		if v, ok := annotations[limKey]; ok {
			errs = append(errs, &AnnotationError{Annotation: limKey, Value: v,
				Reason: fmt.Sprintf("less than the proxy's %s request %s", name, req.String())})
		} else if v, ok := annotations[reqKey]; ok {
			errs = append(errs, &AnnotationError{Annotation: reqKey, Value: v,
				Reason: fmt.Sprintf("more than the proxy's default %s limit %s; set %s too", name, lim.String(), limKey)})
		}
		// Otherwise the defaults themselves disagree; Config.validate says so.
	}
	return r, errs
}

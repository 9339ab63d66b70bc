package controllers

import (
	"context"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	meshv1alpha1 "github.com/skeinmesh/skein/api/v1alpha1"
)

// Kinds of mesh objects, as the xDS server's reports name them.
const (
	KindMeshService         = "MeshService"
	KindTrafficPolicy       = "TrafficPolicy"
	KindAuthorizationPolicy = "AuthorizationPolicy"
)

// ProxyReport is what the control plane knows of the proxies whose
// configuration an object affects.
type ProxyReport struct {
	// Total is the number of connected proxies whose configuration includes the object.
	Total int
	// Synced is how many of them acknowledged their current configuration.
	Synced int
	// Rejected is how many of them refused their latest configuration.
	Rejected int
	// Generation is the oldest generation of the object that any of those
	// configurations was built from; 0 when Total is 0.
	Generation int64
	// Message is one refusal's message, naming the proxy; empty when none.
	Message string
}

// ProxyReporter answers for the control plane. Report's second result is
// false while the control plane cannot tell yet (not running, or not leader).
type ProxyReporter interface {
	Report(kind, namespace, name string) (ProxyReport, bool)
}

// ReasonRejected and the others are reasons for the Programmed condition
// that only the control plane's reports produce.
const (
	// ReasonRejected: at least one proxy refused the configuration; the message says why.
	ReasonRejected = "Rejected"
	// ReasonNoProxies: no connected proxy's configuration includes the object, so
	// there is nothing to wait for.
	ReasonNoProxies = "NoProxies"
	// ReasonNotInForce: the object is not in force (see Accepted), so no proxy gets it.
	ReasonNotInForce = "NotInForce"
)

// programmed computes the Programmed condition and the proxy counts of an
// object at generation gen from the control plane's report. inForce is
// false when the object is not Accepted. Without a report the condition
// stays Pending and the counts are omitted.
func programmed(gen int64, inForce bool, r ProxyReport, reported bool) (metav1.Condition, *meshv1alpha1.ProxyCounts) {
	if !reported {
		return pendingProgrammed(gen), nil
	}
	synced := r.Synced
	if r.Generation < gen {
		// Some proxy still runs an older generation; none can be said to run this one yet.
		synced = 0
	}
	counts := &meshv1alpha1.ProxyCounts{
		Total: int32(r.Total), Synced: int32(synced), Rejected: int32(r.Rejected),
		Summary: strconv.Itoa(synced) + "/" + strconv.Itoa(r.Total),
	}
	switch {
	case !inForce:
		return condition(meshv1alpha1.ConditionProgrammed, false, ReasonNotInForce,
			"the object is not in force (see Accepted), so no proxy is configured from it", gen), counts
	case r.Rejected > 0:
		return condition(meshv1alpha1.ConditionProgrammed, false, ReasonRejected,
			fmt.Sprintf("%d of %d proxies rejected their configuration: %s", r.Rejected, r.Total, r.Message), gen), counts
	case r.Total == 0:
		return condition(meshv1alpha1.ConditionProgrammed, true, ReasonNoProxies,
			"no connected proxy's configuration includes this object", gen), counts
	case synced < r.Total:
		return metav1.Condition{Type: meshv1alpha1.ConditionProgrammed, Status: metav1.ConditionUnknown,
			Reason: meshv1alpha1.ReasonPending, ObservedGeneration: gen,
			Message: fmt.Sprintf("%d of %d proxies run generation %d", synced, r.Total, gen)}, counts
	default:
		return condition(meshv1alpha1.ConditionProgrammed, true, meshv1alpha1.ReasonProgrammed,
			fmt.Sprintf("all %d proxies run generation %d", r.Total, gen), gen), counts
	}
}

// report asks reporter about an object; a nil reporter never reports.
func report(reporter ProxyReporter, kind, namespace, name string) (ProxyReport, bool) {
	if reporter == nil {
		return ProxyReport{}, false
	}
	return reporter.Report(kind, namespace, name)
}

// withProxies replaces the Programmed condition of conds, computed without
// the control plane, by what reporter says of the object, and returns the
// proxy counts for its status. The object is in force when its Accepted
// condition is True.
func withProxies(conds []metav1.Condition, gen int64, reporter ProxyReporter, kind, namespace, name string) ([]metav1.Condition, *meshv1alpha1.ProxyCounts) {
	r, ok := report(reporter, kind, namespace, name)
	inForce := meta.IsStatusConditionTrue(conds, meshv1alpha1.ConditionAccepted)
	cond, counts := programmed(gen, inForce, r, ok)
	out := make([]metav1.Condition, 0, len(conds))
	for _, c := range conds {
		if c.Type != meshv1alpha1.ConditionProgrammed {
			out = append(out, c)
		}
	}
	return append(out, cond), counts
}

// proxiesSource enqueues every object of list's kind each time ch fires:
// the control plane's reports changed and any of them may be affected. With
// no channel (no control plane) it never fires.
func proxiesSource(ch <-chan event.GenericEvent, c client.Reader, list client.ObjectList) source.Source {
	if ch == nil {
		ch = make(chan event.GenericEvent)
	}
	return source.Channel(ch, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		return listRequests(ctx, c, list)
	}))
}

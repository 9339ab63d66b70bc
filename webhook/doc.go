// Package webhook serves the sidecar-injection admission webhook: it decodes
// a pod's admission request, asks internal/inject whether to inject it
// (Decide) and how (Mutate), and answers with a JSON patch. Every decision is
// inject's; this package only reads the pod's Namespace and the mesh-wide
// settings and turns the answer into an admission response:
//
//   - injected: the patch that adds skein-init, skein-proxy and their volumes;
//   - refused (Decision.Refused, such as an invalid skein.io/ annotation):
//     denied, with the Decision's message naming the annotation;
//   - not injected: admitted, with skein.io/inject-skipped: <Reason> when the
//     pod's namespace enables injection or the pod itself says
//     skein.io/inject (inject.MarkSkipped), untouched otherwise.
package webhook

// Package inject decides whether a pod gets Skein's sidecar and, if so,
// computes the injected pod. Both steps are pure functions of the pod, its
// namespace and a Config: no client calls, no clock, no randomness, so the
// same input always gives byte-for-byte the same output. The admission
// webhook only decodes the request, calls Decide and then Mutate, and encodes
// the difference as a JSON patch (jsonpatch.CreatePatch(original, mutated)).
//
// # Deciding
//
// Decide returns a Decision whose Reason is a CamelCase constant, fit for an
// Event. A namespace opts in with the annotation (or label) skein.io/inject:
// enabled; a pod's own skein.io/inject annotation (or label), enabled or
// disabled, overrides its namespace. Where both an annotation and a label are
// set, the annotation wins. Pods of the control plane's namespaces, pods on
// the host's network and pods that are already injected are never injected.
//
// A pod that would be injected but whose skein.io/ annotations are invalid,
// or that already uses one of the names Skein adds, is refused rather than
// admitted without a proxy: Decision.Refused reports it, and the webhook
// denies the pod with Decision.Message, which names the annotation. A mesh
// that silently lets a pod run outside the mesh because of a typo would be
// worse than one that says so at kubectl apply.
//
// # Mutating
//
// Mutate returns a new pod and never changes its argument. It adds:
//
//   - skein-init, the first init container: /skein-init with flags for
//     skein-init's iptables rules, as root with NET_ADMIN and NET_RAW only.
//   - skein-proxy: a native sidecar (an init container with restartPolicy
//     Always, right after skein-init) when Config.NativeSidecars is set or the
//     pod's skein.io/native-sidecar annotation is "true"; otherwise the first
//     of the pod's containers, with a postStart hook that runs
//     "/skein-proxy wait", so the kubelet starts the app only once the proxy
//     is ready.
//   - three volumes: skein-token (a projected service-account token with
//     audience "skein", mounted in the proxy at TokenDir), skein-proxy-data
//     (an in-memory emptyDir at /var/lib/skein, since the proxy's root
//     filesystem is read-only) and skein-xtables-lock (an emptyDir at /run in
//     skein-init, for the iptables lock on a read-only root filesystem).
//   - the annotation skein.io/status, whose presence makes injection
//     idempotent: Decide says AlreadyInjected and Mutate returns a copy.
//
// # Contracts with the proxy and skein-init
//
// The proxy reads its identity from the environment: POD_NAME,
// POD_NAMESPACE, POD_IP, POD_IPS, SERVICE_ACCOUNT, NODE_NAME (downward API),
// SKEIN_TRUST_DOMAIN and SKEIN_XDS_ADDRESS, and its token from TokenDir/token.
// It serves /healthz/ready on the health port (15020), and
// "/skein-proxy wait" polls that endpoint until it answers 200.
//
// skein-init gets --proxy-uid, --proxy-gid, --inbound-port, --outbound-port
// and --exclude-inbound-ports (always with the health and metrics ports),
// plus --exclude-outbound-ports, --exclude-outbound-cidrs and
// --include-outbound-cidrs when the pod's annotations of the same names set
// them; lists are written sorted, once each, CIDRs in canonical form.
//
// HTTP and gRPC probes of the app's containers are rewritten to HTTP GETs on
// the proxy's health port at /app-health/<container>/livez, readyz or
// startupz, so that they keep working under strict mTLS; TCP and exec probes
// are left alone. The originals go, as JSON keyed by that path, into the
// annotation skein.io/original-probes, which the proxy reads through the
// downward API as SKEIN_APP_PROBES:
//
//	{"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080,"scheme":"HTTP"},"timeoutSeconds":1}}
//
// Named ports are resolved to numbers there; a probe with an explicit host,
// or naming a port its container does not declare, is left alone. The proxy answers a rewritten
// probe by making the original one (HTTPS, headers and gRPC included) to the
// app over loopback.
package inject

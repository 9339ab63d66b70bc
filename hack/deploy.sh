#!/usr/bin/env bash
# deploy.sh: installs Skein (config/default: CRDs, RBAC, the operator and the
# mesh-wide ConfigMap) into the cluster of $KUBECONFIG, by default the local
# cluster's, and waits until the operator is Ready. The images come from
# `make images` and `make cluster-load`; when the operator's image changed
# under the same tag, its pods are replaced.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kubectl=$root/bin/k8s/kubectl
export KUBECONFIG=${KUBECONFIG:-${CLUSTER_STATE:-/var/lib/skein-cluster}/admin.kubeconfig}
namespace=skein-system

echo ">> deploying Skein to $("$kubectl" config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
"$kubectl" apply --server-side --force-conflicts -k "$root/config/default" >/dev/null
"$kubectl" wait --for condition=Established --timeout=60s \
	crd/meshservices.mesh.skein.io crd/trafficpolicies.mesh.skein.io crd/authorizationpolicies.mesh.skein.io >/dev/null

# The image's tag stays `dev`; its digest, in an annotation of the pod
# template, rolls the Deployment when the image was rebuilt.
tarball=$root/bin/images/operator.tar
if [ -f "$tarball" ]; then
	digest=$(sha256sum "$tarball" | cut -c1-20)
	"$kubectl" -n "$namespace" patch deployment skein-operator --type merge \
		-p "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"skein.io/image-tarball\":\"$digest\"}}}}}" >/dev/null
fi
echo ">> waiting for the operator to be Ready"
if ! "$kubectl" -n "$namespace" rollout status deployment/skein-operator --timeout=180s; then
	"$kubectl" -n "$namespace" get pods -o wide >&2 || true
	"$kubectl" -n "$namespace" logs deployment/skein-operator --tail=30 >&2 || true
	echo "deploy.sh: the operator did not become Ready" >&2
	exit 1
fi

# The pod being Ready is not enough: kube-proxy writes the webhook Service's
# rules a moment later, and a pod created before then would be refused (or,
# with failurePolicy Ignore, created without its proxy). So ask the API
# server to admit a pod that opts in, without creating it, until it comes
# back injected.
echo ">> waiting for the injection webhook to answer through its Service"
probe_pod='{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"skein-webhook-check-","namespace":"default","annotations":{"skein.io/inject":"enabled"}},"spec":{"serviceAccountName":"default","containers":[{"name":"c","image":"registry.k8s.io/pause:3.10"}]}}'
for _ in $(seq 60); do
	if echo "$probe_pod" | "$kubectl" create --dry-run=server -o jsonpath='{.metadata.annotations.skein\.io/status}' -f - 2>/dev/null | grep -q skein-proxy; then
		echo ">> Skein is deployed"
		exit 0
	fi
	sleep 1
done
echo "deploy.sh: the injection webhook did not answer within 60s" >&2
echo "$probe_pod" | "$kubectl" create --dry-run=server -o yaml -f - >&2 || true
exit 1

#!/usr/bin/env bash
# demo.sh: the end of `make demo`. With the local cluster up and Skein
# deployed (the Makefile does both first), it runs the demo application in
# namespace shop, which opts into the mesh, applies the samples, waits until
# the pods run and the operator resolved everything, and shows the result.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kubectl=$root/bin/k8s/kubectl
export KUBECONFIG=${KUBECONFIG:-${CLUSTER_STATE:-/var/lib/skein-cluster}/admin.kubeconfig}
ns=shop

say() { echo ">> $*"; }
fail() {
	echo "demo.sh: $*" >&2
	"$kubectl" get pods,meshservices,trafficpolicies,authorizationpolicies -n "$ns" -o wide >&2 || true
	exit 1
}

say "running the demo app in namespace $ns (skein.io/inject=enabled): frontend, catalog v1 and v2"
"$kubectl" apply -f hack/demo/app.yaml
say "applying the samples in config/samples"
"$kubectl" apply -k config/samples -n "$ns"

say "waiting (up to 3 minutes) for the pods to be Ready"
"$kubectl" wait --for=condition=Ready pod --all -n "$ns" --timeout=180s >/dev/null || fail "the pods did not become Ready"
say "waiting for the operator to accept and resolve the samples"
for condition in Accepted ResolvedRefs; do
	"$kubectl" wait --for=condition=$condition --timeout=60s -n "$ns" \
		meshservices,trafficpolicies,authorizationpolicies --all >/dev/null || fail "not everything is $condition"
done

catalog_ip=$("$kubectl" get service catalog -n "$ns" -o jsonpath='{.spec.clusterIP}')
echo
echo "\$ kubectl get pods,meshservices,trafficpolicies,authorizationpolicies -n $ns"
"$kubectl" get pods,meshservices,trafficpolicies,authorizationpolicies -n "$ns"
echo
echo "\$ curl http://$catalog_ip:8080/catalog   # the catalog Service, through kube-proxy"
curl -s --max-time 5 "http://$catalog_ip:8080/catalog" | head -c 400 || true
echo
cat <<EOT

Skein's operator runs in namespace skein-system of the local cluster. The
demo's pods were injected: skein-init set up their traffic capture and
skein-proxy runs beside each app (READY 2/2), so the request above went
through the catalog pod's proxy (the app saw it come from 127.0.0.6). The
proxy forwards TCP as it is for now; routing, mTLS and the policies' effects
arrive with the xDS control plane, so Programmed stays Unknown (Pending).

What to look at next (kubectl is $kubectl if none is on your PATH):
  export KUBECONFIG=$KUBECONFIG
  kubectl describe meshservice catalog -n $ns        # conditions, pods per subset, SPIFFE identities
  kubectl get pod catalog-v1 -n $ns -o yaml          # what injection added: skein-init, skein-proxy, probes
  kubectl get meshservices -n $ns -o wide -w         # then, in another terminal:
  kubectl delete pod catalog-v2 -n $ns               #   subset v2 is empty: ResolvedRefs False, SubsetHasNoPods
  kubectl apply -f hack/demo/app.yaml                 #   and back to True
  kubectl logs -n skein-system deploy/skein-operator
  make cluster-down                                   # stop the cluster and remove what it added to the machine
EOT

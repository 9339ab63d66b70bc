#!/usr/bin/env bash
# cluster.sh up|down|status: Skein's own single-node Kubernetes cluster, behind
# `make cluster-up`, `make cluster-down` and `make cluster-status`.
#
#   up      Builds what is missing (kube-apiserver, kube-controller-manager,
#           kube-scheduler, kubelet, kube-proxy, kubectl, etcd and CoreDNS
#           into bin/k8s, from source, once), installs containerd, runc, CNI
#           plugins, iptables and conntrack from Debian when missing, and
#           starts etcd, the API server, the controller manager, the
#           scheduler, containerd, the kubelet, kube-proxy (iptables mode) and
#           CoreDNS as host processes. It returns when the node is Ready and
#           DNS answers. A cluster already up is left as it is; leftovers of
#           one that died are cleaned first. Every `up` starts an empty
#           cluster (new etcd data); images imported into containerd stay.
#   down    Stops every process by its PID, kills the pods, and removes what
#           the cluster added to the machine: mounts, pod network namespaces,
#           the bridge and the service-CIDR interface, the KUBE-*, CNI-* and
#           SKEIN-CLUSTER-* iptables chains, the kubepods cgroups, the
#           kernel settings the kubelet changed. Keeps the certificates and
#           containerd's image store, so the next `up` is fast.
#   status  Shows what runs.
#
# The admin kubeconfig is $CLUSTER_STATE/admin.kubeconfig. Nothing the cluster
# does sends traffic off the machine: CoreDNS has no forward plugin, the
# service CIDR is routed to an interface that drops what it is sent (so a
# ClusterIP packet that kube-proxy did not rewrite dies here, not on the
# default route), pods get no forwarding off the node, and containerd pulls
# through a proxy address where nothing listens.
#
# Settings (environment): CLUSTER_STATE (default /var/lib/skein-cluster),
# CLUSTER_NODE_IP (default the primary IPv4 address: that of the default
# route's interface), CLUSTER_NODE_NAME (default the host name), K8S_BIN
# (default bin/k8s).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/hack/cluster

state=${CLUSTER_STATE:-/var/lib/skein-cluster}
k8s_bin=${K8S_BIN:-$root/bin/k8s}
kubectl=$k8s_bin/kubectl

# Addresses. The pod CIDR sits on our bridge, the service CIDR on an
# interface that drops; neither overlaps a network of this machine (checked).
pod_cidr=10.244.0.0/24
bridge=skein0
bridge_ip=10.244.0.1
service_cidr=10.96.0.0/16
service_if=skein-svc0
kubernetes_ip=10.96.0.1
dns_ip=10.96.0.10
cluster_domain=cluster.local
apiserver_port=6443
etcd_client=127.0.0.1:12379
etcd_peer=127.0.0.1:12380
coredns_health=127.0.0.1:18080
coredns_ready=127.0.0.1:18181
cni_network=skein-pods
sandbox_image=registry.k8s.io/pause:3.10

# Components in start order; down stops them in reverse.
components=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns)

admin_kubeconfig=$state/admin.kubeconfig
containerd_sock=$state/run/containerd/containerd.sock

source "$here/lib/util.sh"
source "$here/lib/config.sh"
source "$here/lib/network.sh"
source "$here/lib/cleanup.sh"

node_ip() {
	if [ -n "${CLUSTER_NODE_IP:-}" ]; then
		echo "$CLUSTER_NODE_IP"
		return
	fi
	local dev
	dev=$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
	[ -n "$dev" ] || die "no default route: set CLUSTER_NODE_IP to this machine's address"
	ip -4 -o addr show dev "$dev" scope global | awk '{split($4, a, "/"); print a[1]; exit}'
}

node_name() {
	local n=${CLUSTER_NODE_NAME:-$(hostname)}
	echo "${n,,}"
}

# install_packages installs from Debian what the node needs and is missing.
install_packages() {
	local missing=()
	command -v containerd >/dev/null || missing+=(containerd)
	command -v runc >/dev/null || missing+=(runc)
	[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/portmap ] ||
		missing+=(containernetworking-plugins)
	command -v iptables >/dev/null || missing+=(iptables)
	command -v conntrack >/dev/null || missing+=(conntrack)
	command -v nft >/dev/null || missing+=(nftables)
	command -v dig >/dev/null || missing+=(bind9-dnsutils)
	command -v curl >/dev/null || missing+=(curl)
	[ ${#missing[@]} -eq 0 ] && return
	say "installing ${missing[*]} from Debian"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build_binaries() {
	"$root/hack/build-k8s.sh" "$k8s_bin" etcd kube-apiserver kube-controller-manager kube-scheduler \
		kubelet kube-proxy kubectl coredns
}

# running: true when every component runs and the API server is ready.
running() {
	local c
	for c in "${components[@]}"; do
		component_alive "$c" || return 1
	done
	kc get --raw /readyz >/dev/null 2>&1
}

# any_running: true when a component of this state dir runs.
any_running() {
	local c
	for c in "${components[@]}"; do
		component_alive "$c" && return 0
	done
	return 1
}

kc() { "$kubectl" --kubeconfig "$admin_kubeconfig" "$@"; }

up() {
	[ "$(id -u)" = 0 ] || die "up needs root (it runs a kubelet)"
	mkdir -p "$state"
	lock
	if running; then
		say "the cluster is already up (state $state)"
		print_access
		return 0
	fi
	if any_running; then
		say "a part of the cluster runs: stopping it first"
	fi
	# Whatever a cluster that died left behind goes first; and should this
	# up fail, what it started goes too (the logs stay).
	teardown quiet
	trap 'up_failed' EXIT

	install_packages
	build_binaries
	local ip name
	ip=$(node_ip)
	name=$(node_name)
	[ -n "$ip" ] || die "cannot tell this machine's IPv4 address: set CLUSTER_NODE_IP"
	check_cidrs_free
	say "node $name at $ip; pods $pod_cidr on $bridge; services $service_cidr on $service_if"

	mkdir -p "$state"/{logs,pids,run,config,cni,etcd}
	(cd "$root" && go run ./hack/cluster/pki -dir "$state/pki" -node-name "$name" -node-ip "$ip" \
		-service-ip "$kubernetes_ip" -server "https://$ip:$apiserver_port")
	install -m 0600 "$state/pki/admin.kubeconfig" "$admin_kubeconfig"
	write_configs "$ip" "$name"
	setup_network

	start etcd "$k8s_bin/etcd" --name=default --data-dir="$state/etcd" \
		--listen-client-urls="http://$etcd_client" --advertise-client-urls="http://$etcd_client" \
		--listen-peer-urls="http://$etcd_peer" --initial-advertise-peer-urls="http://$etcd_peer" \
		--initial-cluster="default=http://$etcd_peer" --unsafe-no-fsync=true
	wait_for "etcd" 30 curl -fsS "http://$etcd_client/health"

	start kube-apiserver "$k8s_bin/kube-apiserver" \
		--advertise-address="$ip" --bind-address="$ip" --secure-port="$apiserver_port" \
		--etcd-servers="http://$etcd_client" \
		--client-ca-file="$state/pki/ca.crt" \
		--tls-cert-file="$state/pki/apiserver.crt" --tls-private-key-file="$state/pki/apiserver.key" \
		--kubelet-client-certificate="$state/pki/apiserver-kubelet-client.crt" \
		--kubelet-client-key="$state/pki/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority="$state/pki/ca.crt" \
		--kubelet-preferred-address-types=InternalIP \
		--requestheader-client-ca-file="$state/pki/front-proxy-ca.crt" \
		--requestheader-allowed-names=front-proxy-client \
		--requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
		--requestheader-extra-headers-prefix=X-Remote-Extra- \
		--proxy-client-cert-file="$state/pki/front-proxy-client.crt" \
		--proxy-client-key-file="$state/pki/front-proxy-client.key" \
		--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
		--allow-privileged=true \
		--service-cluster-ip-range="$service_cidr" \
		--service-account-issuer="https://kubernetes.default.svc.$cluster_domain" \
		--service-account-key-file="$state/pki/sa.pub" \
		--service-account-signing-key-file="$state/pki/sa.key" \
		--cert-dir="$state/run/apiserver" --profiling=false

	# containerd does not need the API server: start it meanwhile.
	start_containerd
	if [ -n "$(ctr_ -n k8s.io containers ls -q)" ]; then
		# Containers of a cluster that died: its CRI plugin loaded them at
		# start, so delete them and start it again.
		say "removing the containers of a cluster that died"
		remove_containers quiet
		stop containerd quiet
		start_containerd
	fi
	ensure_sandbox_image

	wait_for "the API server" 90 kc get --raw /readyz

	start kube-controller-manager "$k8s_bin/kube-controller-manager" \
		--kubeconfig="$state/pki/controller-manager.kubeconfig" \
		--authentication-kubeconfig="$state/pki/controller-manager.kubeconfig" \
		--authorization-kubeconfig="$state/pki/controller-manager.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
		--use-service-account-credentials=true \
		--service-account-private-key-file="$state/pki/sa.key" --root-ca-file="$state/pki/ca.crt" \
		--cluster-signing-cert-file="$state/pki/ca.crt" --cluster-signing-key-file="$state/pki/ca.key" \
		--allocate-node-cidrs=true --cluster-cidr="$pod_cidr" --node-cidr-mask-size="${pod_cidr#*/}" \
		--service-cluster-ip-range="$service_cidr"
	start kube-scheduler "$k8s_bin/kube-scheduler" \
		--kubeconfig="$state/pki/scheduler.kubeconfig" \
		--authentication-kubeconfig="$state/pki/scheduler.kubeconfig" \
		--authorization-kubeconfig="$state/pki/scheduler.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false
	start kubelet "$k8s_bin/kubelet" \
		--config="$state/config/kubelet.yaml" --kubeconfig="$state/pki/kubelet.kubeconfig" \
		--root-dir="$state/kubelet" --hostname-override="$name" --node-ip="$ip"
	start kube-proxy "$k8s_bin/kube-proxy" --config="$state/config/kube-proxy.yaml"

	wait_for "the kube-dns Service" 60 kc apply -f "$state/config/coredns.yaml"
	start coredns "$k8s_bin/coredns" -conf "$state/config/Corefile"

	wait_for "node $name to register" 60 kc get node "$name"
	wait_for "node $name to be Ready" 90 node_ready "$name"
	wait_for "DNS (kubernetes.default via $dns_ip)" 60 dns_answers
	# Pods are admitted only once their namespace's default ServiceAccount exists.
	wait_for "the default ServiceAccount" 60 kc -n default get serviceaccount default
	trap - EXIT
	say "the cluster is up"
	print_access
}

up_failed() {
	echo "cluster.sh: up failed: stopping what it started; the logs stay in $state/logs" >&2
	teardown quiet
}

# start_containerd: containerd, pulling only through a proxy where nothing
# listens (pull_proxy).
start_containerd() {
	start containerd env HTTP_PROXY="$pull_proxy" HTTPS_PROXY="$pull_proxy" NO_PROXY="$no_proxy" \
		http_proxy="$pull_proxy" https_proxy="$pull_proxy" no_proxy="$no_proxy" \
		/usr/bin/containerd --config "$state/config/containerd.toml"
	wait_for "containerd" 30 ctr_ version
}

node_ready() {
	[ "$(kc get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

# dns_answers: CoreDNS, reached through kube-proxy at the DNS Service's
# ClusterIP, resolves the kubernetes Service.
dns_answers() {
	[ "$(dig +short +time=1 +tries=1 @"$dns_ip" "kubernetes.default.svc.$cluster_domain" A)" = "$kubernetes_ip" ]
}

print_access() {
	echo "   admin kubeconfig: $admin_kubeconfig"
	echo "   export KUBECONFIG=$admin_kubeconfig; $kubectl get nodes"
}

down() {
	[ "$(id -u)" = 0 ] || die "down needs root"
	if [ ! -d "$state" ]; then
		say "no cluster (no $state)"
		return 0
	fi
	lock
	teardown
	say "the cluster is down (kept: certificates and images in $state)"
}

# teardown [quiet]: stops everything and removes what the cluster added.
teardown() {
	local quiet=${1:-}
	local i c
	for c in coredns kube-proxy kubelet; do
		stop "$c" "$quiet"
	done
	remove_containers "$quiet"
	stop containerd "$quiet"
	kill_leftover_containers
	for ((i = ${#components[@]} - 1; i >= 0; i--)); do
		stop "${components[i]}" "$quiet"
	done
	unmount_state
	teardown_network
	remove_cgroups
	restore_sysctls
	remove_runtime_files
}

status() {
	local c pid
	for c in "${components[@]}"; do
		if component_alive "$c"; then
			pid=$(cat "$state/pids/$c.pid")
			printf '%-24s running  pid %-8s log %s\n' "$c" "$pid" "$state/logs/$c.log"
		else
			printf '%-24s stopped\n' "$c"
		fi
	done
	if running; then
		echo
		kc get nodes -o wide
		echo
		kc get pods -A -o wide
		echo
		print_access
	fi
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac

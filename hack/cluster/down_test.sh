#!/usr/bin/env bash
# down_test.sh: `make cluster-down` leaves nothing of the cluster behind.
#
# Records what this machine has that a cluster could leave (its processes,
# mounts, interfaces, routes, iptables chains and rules, nftables tables,
# kubepods cgroups, kernel settings and files the kubelet and libcni keep
# outside the state dir), brings the cluster up, runs a pod through it
# (scheduling, CNI and containerd) and a Service and DNS lookup (kube-proxy,
# CoreDNS), brings it down, and compares. Then, once more, times an `up`
# after `down` (it must take under a minute: nothing is rebuilt) and checks
# again. A cluster already up is taken down first: the baseline must be a
# machine without it. Needs root. Prints "N passed, N failed".
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cluster=$root/hack/cluster/cluster.sh
state=${CLUSTER_STATE:-/var/lib/skein-cluster}
kubectl=${K8S_BIN:-$root/bin/k8s}/kubectl
export KUBECONFIG=$state/admin.kubeconfig
pod_cidr_prefix=10.244.0.
service_cidr_prefix=10.96.
dns_ip=10.96.0.10
kubernetes_ip=10.96.0.1
second_up_limit=60

passed=0
failed=0
pass() {
	echo "PASS: $*"
	passed=$((passed + 1))
}
fail() {
	echo "FAIL: $*"
	failed=$((failed + 1))
}
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# snapshot DIR: one file per kind of thing a cluster could leave behind.
# Where other work on this machine may add things of its own meanwhile
# (processes, mounts, interfaces, routes), only what could be the cluster's
# is recorded; iptables, nftables, cgroups and kernel settings are recorded
# whole.
snapshot() {
	local d=$1 dir cmdline
	mkdir -p "$d"
	# Processes whose command line names the state dir (the components,
	# containerd's shims) or that run in the kubelet's cgroups (containers).
	for dir in /proc/[0-9]*; do
		cmdline=$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null) || continue
		if [[ $cmdline == *"$state/"* ]] || grep -q ':/kubepods' "$dir/cgroup" 2>/dev/null; then
			echo "$cmdline"
		fi
	done | sort >"$d/processes"
	# Mounts under the state dir or where container runtimes and kubelets
	# mount, and any overlay or network-namespace mount.
	awk '{ for (i = 7; $i != "-"; i++); print $5, $(i + 1) }' /proc/self/mountinfo |
		grep -E "^($state/|/run/containerd|/run/netns|/var/run/netns|/var/lib/kubelet|/var/lib/containerd)| (overlay|nsfs)$" |
		sort >"$d/mounts"
	# Interfaces a cluster makes: its bridge and service interface, pod
	# veths, CNI and kube devices.
	ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(skein|veth|cni|kube)' | sort >"$d/interfaces"
	ip -4 route show table all | grep -E "$pod_cidr_prefix|$service_cidr_prefix|skein" | sort >"$d/routes"
	# Chains and rules, counters stripped.
	{
		iptables-save
		ip6tables-save
	} 2>/dev/null | grep -E '^(\*|:|-A)' | sed 's/ \[[0-9]*:[0-9]*\]$//' >"$d/iptables"
	nft list tables 2>/dev/null | sort >"$d/nftables"
	find /sys/fs/cgroup -maxdepth 3 -type d -name 'kubepods*' 2>/dev/null | sort >"$d/cgroups"
	sysctl vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys \
		kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.route_localnet \
		net.bridge.bridge-nf-call-iptables net.netfilter.nf_conntrack_max 2>/dev/null >"$d/sysctls"
	find /run/containerd/s /var/lib/cni/results /var/log/containers /var/log/pods -maxdepth 1 2>/dev/null |
		sort >"$d/files"
}

# compare BEFORE AFTER WHEN: one check per kind.
compare() {
	local before=$1 after=$2 when=$3 f
	for f in processes mounts interfaces routes iptables nftables cgroups sysctls files; do
		if diff -u "$before/$f" "$after/$f" >"$tmp/diff"; then
			pass "$when: no $f left behind"
		else
			fail "$when: $f differ from before the cluster:"
			sed -n '3,40p' "$tmp/diff" | sed 's/^/    /'
		fi
	done
}

# run_pod NAME: a pod from the pause image reaches Running with an address
# of the pod CIDR.
run_pod() {
	local name=$1 ip
	"$kubectl" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: default
  labels:
    app: $name
spec:
  containers:
  - name: pause
    image: registry.k8s.io/pause:3.10
    imagePullPolicy: Never
EOF
	if "$kubectl" wait --for=jsonpath='{.status.phase}'=Running "pod/$name" --timeout=90s >/dev/null; then
		ip=$("$kubectl" get pod "$name" -o jsonpath='{.status.podIP}')
		if [[ $ip == "$pod_cidr_prefix"* ]]; then
			pass "pod $name is Running at $ip"
		else
			fail "pod $name is Running at $ip, outside the pod CIDR"
		fi
	else
		fail "pod $name did not reach Running"
		"$kubectl" describe pod "$name" | tail -n 15 | sed 's/^/    /'
	fi
}

# pod_pid NAME: a process of the pod (its pause), found in its cgroup.
pod_pid() {
	local uid
	uid=$("$kubectl" get pod "$1" -o jsonpath='{.metadata.uid}') || return 1
	find /sys/fs/cgroup/pids/kubepods -path "*pod$uid/*" -name cgroup.procs -exec cat {} + 2>/dev/null | head -n 1
}

# from_pod NAME: the pod's network reaches CoreDNS and the API server through
# their Services, as a container in it would.
from_pod() {
	local pid
	pid=$(pod_pid "$1")
	if [ -z "$pid" ]; then
		fail "no process of pod $1 found in its cgroup"
		return
	fi
	if [ "$(nsenter -t "$pid" -n dig +short +time=2 +tries=2 @"$dns_ip" kubernetes.default.svc.cluster.local A)" = "$kubernetes_ip" ]; then
		pass "from pod $1's network, DNS through the kube-dns Service answers"
	else
		fail "from pod $1's network, DNS through the kube-dns Service does not answer"
	fi
	if nsenter -t "$pid" -n curl -fsS --max-time 5 --cacert "$state/pki/ca.crt" "https://$kubernetes_ip/livez" >/dev/null; then
		pass "from pod $1's network, the kubernetes Service reaches the API server"
	else
		fail "from pod $1's network, the kubernetes Service does not reach the API server"
	fi
}

# service_between_pods CLIENT SERVER: a pod reaches another pod, and a pod
# itself, through a Service's ClusterIP (kube-proxy's DNAT on the bridge).
# The pause image serves nothing, so an HTTP server runs in SERVER's network
# namespace: python3's, from the host.
service_between_pods() {
	local client=$1 server=$2 cpid spid http svc i
	if [ ! -x /usr/bin/python3 ]; then
		echo "SKIP: the Service check needs /usr/bin/python3 as a server"
		return
	fi
	cpid=$(pod_pid "$client")
	spid=$(pod_pid "$server")
	mkdir -p "$tmp/www" && echo skein-down-test >"$tmp/www/index.html"
	(cd "$tmp/www" && exec nsenter -t "$spid" -n /usr/bin/python3 -m http.server 8080 >/dev/null 2>&1) &
	http=$!
	"$kubectl" expose pod "$server" --name=skein-down-test --port=80 --target-port=8080 >/dev/null
	svc=$("$kubectl" get service skein-down-test -o jsonpath='{.spec.clusterIP}')
	for ((i = 0; i < 20; i++)); do
		[ "$(nsenter -t "$cpid" -n curl -s --max-time 2 "http://$svc/")" = skein-down-test ] && break
		sleep 0.5
	done
	if ((i < 20)); then
		pass "pod $client reaches pod $server through Service $svc"
	else
		fail "pod $client does not reach pod $server through Service $svc"
	fi
	if [ "$(nsenter -t "$spid" -n curl -s --max-time 5 "http://$svc/")" = skein-down-test ]; then
		pass "pod $server reaches itself through Service $svc (hairpin)"
	else
		fail "pod $server does not reach itself through Service $svc (hairpin)"
	fi
	kill "$http" 2>/dev/null
	wait "$http" 2>/dev/null
	"$kubectl" delete service skein-down-test >/dev/null
}

# pods_stay_on_node POD: a pod's packet to an address beyond the bridge is
# not forwarded. The address is that of a network namespace this test makes
# (198.18.0.2, behind a veth): counters there and on the cluster's guard
# show where the packet went. It is sent only once the route to it is known
# to be the veth.
pods_stay_on_node() {
	local pid ns=skein-down-test-out far=198.18.0.2 arrived dropped
	pid=$(pod_pid "$1")
	ip netns add "$ns"
	ip link add skein-dt-h type veth peer name skein-dt-o
	ip link set skein-dt-o netns "$ns"
	ip addr add 198.18.0.1/30 dev skein-dt-h
	ip link set skein-dt-h up
	ip -n "$ns" addr add "$far/30" dev skein-dt-o
	ip -n "$ns" link set skein-dt-o up
	ip netns exec "$ns" iptables -A INPUT -p tcp --dport 9 2>/dev/null
	if [[ $(ip route get "$far") == *"dev skein-dt-h "* ]]; then
		dropped=$(iptables -t mangle -L SKEIN-CLUSTER-FWD -v -n -x 2>/dev/null | awk 'NR > 2 {n += $1} END {print n + 0}')
		nsenter -t "$pid" -n timeout 3 bash -c "echo >/dev/tcp/$far/9" 2>/dev/null
		arrived=$(ip netns exec "$ns" iptables -L INPUT -v -n -x 2>/dev/null | awk 'NR > 2 {n += $1} END {print n + 0}')
		dropped=$(($(iptables -t mangle -L SKEIN-CLUSTER-FWD -v -n -x 2>/dev/null | awk 'NR > 2 {n += $1} END {print n + 0}') - dropped))
		if [ "$arrived" -eq 0 ] && [ "$dropped" -gt 0 ]; then
			pass "a packet from pod $1 to an address beyond the bridge is dropped, not forwarded"
		else
			fail "a packet from pod $1 to an address beyond the bridge: $arrived arrived, $dropped dropped by the guard"
		fi
	else
		fail "the test's route to $far is not its veth: $(ip route get "$far" | head -1)"
	fi
	ip netns del "$ns"
	ip link del skein-dt-h 2>/dev/null
}

# pull_stays_local: containerd pulls through a proxy address where nothing
# listens, so a pull never reaches a registry. The image names this
# machine's host name as its registry, which /etc/hosts maps to loopback:
# even were the proxy not used, the pull would stay on this machine.
pull_stays_local() {
	local host image
	host=$(hostname)
	if ! grep -qE "^127\.[0-9.]+[[:space:]](.*[[:space:]])?$host([[:space:]]|\$)" /etc/hosts; then
		echo "SKIP: the pull check needs /etc/hosts to map $host to a loopback address"
		return
	fi
	image=$host:5999/skein/no-such-image:1
	"$kubectl" run skein-down-test-pull --image="$image" --image-pull-policy=Always >/dev/null
	local i
	for ((i = 0; i < 30; i++)); do
		grep -F "https://$host:5999/v2/skein/no-such-image/manifests/1" "$state/logs/containerd.log" |
			grep -cF "proxyconnect tcp: dial tcp 127.0.0.1:9" >/dev/null && break
		sleep 1
	done
	if ((i < 30)); then
		pass "containerd pulls through the dead proxy 127.0.0.1:9, so no pull leaves the machine"
	else
		fail "containerd did not pull $image through the dead proxy 127.0.0.1:9"
	fi
	"$kubectl" delete pod skein-down-test-pull --wait=false >/dev/null
}

# timed_up: runs `up`, setting up_seconds.
timed_up() {
	local start=$SECONDS
	"$cluster" up >"$tmp/up.log" 2>&1
	local rc=$?
	up_seconds=$((SECONDS - start))
	[ $rc -eq 0 ] || sed 's/^/    /' "$tmp/up.log"
	return $rc
}

[ "$(id -u)" = 0 ] || {
	fail "needs root"
	finish
}

if [[ $("$cluster" status 2>/dev/null) == *running* ]]; then
	echo "the cluster runs: taking it down for a baseline without it"
	"$cluster" down >/dev/null || fail "down of the running cluster"
fi
snapshot "$tmp/before"

if timed_up; then
	pass "up (${up_seconds}s)"
else
	fail "up"
	"$cluster" down >/dev/null 2>&1
	finish
fi
pids_before=$(cat "$state"/pids/*.pid | sort)
if "$cluster" up >/dev/null 2>&1 && [ "$(cat "$state"/pids/*.pid | sort)" = "$pids_before" ]; then
	pass "a second up leaves the running cluster as it is"
else
	fail "a second up changed the running cluster"
fi

run_pod skein-down-test
from_pod skein-down-test
run_pod skein-down-test-server
service_between_pods skein-down-test skein-down-test-server
pods_stay_on_node skein-down-test
pull_stays_local
if [ "$(dig +short +time=2 +tries=2 @"$dns_ip" "kubernetes.default.svc.cluster.local" A)" = "$kubernetes_ip" ]; then
	pass "DNS through the kube-dns Service answers kubernetes.default.svc.cluster.local"
else
	fail "DNS through the kube-dns Service does not answer"
fi
if "$kubectl" --server "https://$kubernetes_ip:443" get --raw /readyz >/dev/null; then
	pass "the kubernetes Service's ClusterIP reaches the API server through kube-proxy"
else
	fail "the kubernetes Service's ClusterIP does not reach the API server"
fi
# A packet to a ClusterIP that kube-proxy does not rewrite dies on
# skein-svc0 (a dummy or ifb device: it counts the packet and drops it). One
# TCP SYN is sent, and only once the route is known to be that device.
unused_ip=${service_cidr_prefix}255.254
if [[ $(ip route get "$unused_ip") == *"dev skein-svc0 "* ]]; then
	pass "an unused ClusterIP is routed to skein-svc0"
	svc_counts() {
		local n=0 f
		for f in tx_packets tx_dropped rx_dropped; do
			n=$((n + $(cat "/sys/class/net/skein-svc0/statistics/$f")))
		done
		echo "$n"
	}
	count=$(svc_counts)
	timeout 3 bash -c "echo >/dev/tcp/$unused_ip/80" 2>/dev/null
	if [ "$(svc_counts)" -gt "$count" ]; then
		pass "skein-svc0 took the packet to an unused ClusterIP and dropped it"
	else
		fail "skein-svc0 saw no packet to an unused ClusterIP"
	fi
else
	fail "an unused ClusterIP is routed elsewhere: $(ip route get "$unused_ip" | head -1)"
fi

# The snapshot must see the cluster, or comparing after down proves nothing.
snapshot "$tmp/during"
for f in processes mounts interfaces routes iptables cgroups; do
	if diff -q "$tmp/before/$f" "$tmp/during/$f" >/dev/null; then
		fail "the snapshot sees no $f of the running cluster"
	else
		pass "the snapshot sees the running cluster's $f"
	fi
done

if "$cluster" down >"$tmp/down.log" 2>&1; then
	pass "down"
else
	fail "down"
	sed 's/^/    /' "$tmp/down.log"
fi
snapshot "$tmp/after"
compare "$tmp/before" "$tmp/after" "after down"

if timed_up; then
	if [ "$up_seconds" -lt "$second_up_limit" ]; then
		pass "up after down took ${up_seconds}s (limit ${second_up_limit}s)"
	else
		fail "up after down took ${up_seconds}s (limit ${second_up_limit}s)"
	fi
	run_pod skein-down-test-again
else
	fail "up after down"
fi
"$cluster" down >"$tmp/down.log" 2>&1 || {
	fail "second down"
	sed 's/^/    /' "$tmp/down.log"
}
snapshot "$tmp/after2"
compare "$tmp/before" "$tmp/after2" "after the second down"
finish

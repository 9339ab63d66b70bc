# network.sh: the host network of the local cluster and its removal; the
# kernel settings the node changes and their restoration. Sourced by
# cluster.sh.

# Chains the cluster owns, in every table, for iptables and ip6tables:
# KUBE-* (kubelet, kube-proxy), CNI-* (portmap), SKEIN-CLUSTER-* (ours).
owned_chains='^(KUBE|CNI|SKEIN-CLUSTER)-'
forward_guard=SKEIN-CLUSTER-FWD

# Kernel settings the kubelet, kube-proxy or setup_network may change;
# setup_network saves them and teardown restores them.
sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
	kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
	net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables
	net.bridge.bridge-nf-call-ip6tables net.netfilter.nf_conntrack_max)

# check_cidrs_free: the pod and service CIDRs must not overlap a network of
# this machine, or the cluster would capture (or leak to) real traffic.
check_cidrs_free() {
	local cidr clash
	for cidr in "$pod_cidr" "$service_cidr"; do
		clash=$({
			ip -4 route show table all root "$cidr"
			ip -4 route show table all match "$cidr" | grep -v '^default'
		} | grep -vE "dev ($bridge|$service_if)( |$)" | grep -vE '^(local|broadcast) ' || true)
		[ -z "$clash" ] || die "$cidr overlaps a network of this machine: $clash"
	done
}

setup_network() {
	# What the machine had before the cluster; kept until a teardown has
	# restored it, so a teardown that failed does not make leftovers look
	# like the machine's own.
	save_sysctls
	note_host_dirs
	[ -f "$state/nft-tables.before" ] || nft list tables 2>/dev/null | sort >"$state/nft-tables.before"

	# A ClusterIP packet that kube-proxy did not rewrite is routed to an
	# interface that drops whatever it is sent (dummy; ifb where the kernel
	# has no dummy), never to the default route.
	ip link add "$service_if" type dummy 2>/dev/null || ip link add "$service_if" type ifb ||
		die "cannot create $service_if (neither dummy nor ifb)"
	ip link set "$service_if" up
	ip route replace "$service_cidr" dev "$service_if"

	# The pods' bridge, with the gateway address; the CNI bridge plugin
	# attaches pods to it.
	ip link add "$bridge" type bridge
	ip addr add "$bridge_ip/${pod_cidr#*/}" dev "$bridge"
	ip link set "$bridge" up

	# kube-proxy's rules must see traffic between pods on the bridge.
	if [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
		modprobe br_netfilter 2>/dev/null || say "warning: no br_netfilter: pod-to-Service-to-pod traffic may fail"
	fi
	[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1

	# Pods reach pods, Services and this machine, nothing beyond: nothing
	# from the pod CIDR or the bridge is forwarded anywhere but back to the
	# bridge. mangle FORWARD comes before kube-proxy's filter FORWARD rules,
	# and kube-proxy leaves mangle alone, so nothing accepts it earlier.
	iptables -t mangle -N "$forward_guard"
	iptables -t mangle -A "$forward_guard" -s "$pod_cidr" ! -d "$pod_cidr" -j DROP
	iptables -t mangle -A "$forward_guard" -i "$bridge" ! -o "$bridge" -j DROP
	iptables -t mangle -I FORWARD 1 -m comment --comment "skein cluster: pods are not forwarded off the node" \
		-j "$forward_guard"

	# A pod's packet to a ClusterIP is addressed to the bridge (the pods'
	# gateway); once kube-proxy rewrote it to another pod it must go back
	# out of the bridge, which takes forwarding on the bridge. On the bridge
	# only: what arrives on another interface is not forwarded, and the
	# guard above keeps what arrives on the bridge on the bridge. The
	# setting goes with the bridge.
	sysctl -qw "net.ipv4.conf.$bridge.forwarding=1"
}

teardown_network() {
	local link
	for link in $(ip -o link show master "$bridge" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
		ip link del "$link" 2>/dev/null || true
	done
	ip link del "$bridge" 2>/dev/null || true
	ip link del "$service_if" 2>/dev/null || true
	remove_chains iptables
	remove_chains ip6tables
	remove_created_tables
	conntrack -D -s "${pod_cidr%/*}" --mask-src "$(cidr_mask "$pod_cidr")" >/dev/null 2>&1 || true
	conntrack -D -d "${service_cidr%/*}" --mask-dst "$(cidr_mask "$service_cidr")" >/dev/null 2>&1 || true
}

# remove_chains iptables|ip6tables: deletes the owned chains of every table
# and the rules of other chains that jump to them, in one transaction per
# table.
remove_chains() {
	local cmd=$1 table save chains
	command -v "$cmd-save" >/dev/null || return 0
	for table in $("$cmd-save" 2>/dev/null | sed -n 's/^\*//p'); do
		save=$("$cmd-save" -t "$table" 2>/dev/null)
		chains=$(sed -n 's/^:\([^ ]*\) .*/\1/p' <<<"$save" | grep -E "$owned_chains" || true)
		[ -n "$chains" ] || continue
		{
			echo "*$table"
			# A jump from a chain we do not own: delete that rule.
			grep -E '^-A ' <<<"$save" | while IFS= read -r rule; do
				read -r _ chain _ <<<"$rule"
				[[ $chain =~ $owned_chains ]] && continue
				[[ $rule =~ (-j|-g)\ (KUBE|CNI|SKEIN-CLUSTER)- ]] && echo "-D ${rule#-A }"
			done
			sed 's/^/-F /' <<<"$chains"
			sed 's/^/-X /' <<<"$chains"
			echo COMMIT
		} | "$cmd-restore" --noflush || say "warning: could not remove every $cmd chain of table $table"
	done
}

# remove_created_tables: the iptables-nft tables that appeared with the
# cluster and are now empty (no rules, no chains of their own, policies
# ACCEPT) are deleted, so the machine's nftables are as before.
remove_created_tables() {
	local before=$state/nft-tables.before family name cmd rules
	[ -f "$before" ] && command -v nft >/dev/null || return 0
	while read -r _ family name; do
		grep -qxF "table $family $name" "$before" && continue
		case $family in
		ip) cmd=iptables-nft-save ;;
		ip6) cmd=ip6tables-nft-save ;;
		*) continue ;;
		esac
		case $name in filter | nat | mangle | raw | security) ;; *) continue ;; esac
		rules=$("$cmd" -t "$name" 2>/dev/null) || continue
		grep -vE '^(#|\*|COMMIT$|:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT )' <<<"$rules" | grep -c . >/dev/null &&
			continue
		nft delete table "$family" "$name" 2>/dev/null || true
	done < <(nft list tables 2>/dev/null)
	rm -f "$before"
}

# cidr_mask A.B.C.D/N: the netmask of a /N.
cidr_mask() {
	local n=${1#*/} m=() i
	for i in 0 1 2 3; do
		if ((n >= 8)); then
			m+=(255)
			n=$((n - 8))
		else
			m+=($((256 - (1 << (8 - n)))))
			n=0
		fi
	done
	local IFS=.
	echo "${m[*]}"
}

save_sysctls() {
	local f=$state/sysctl.saved s v
	[ -f "$f" ] && return
	for s in "${sysctls[@]}"; do
		v=$(sysctl -n "$s" 2>/dev/null) && echo "$s=$v"
	done >"$f.tmp"
	mv "$f.tmp" "$f"
}

restore_sysctls() {
	local f=$state/sysctl.saved s v
	[ -f "$f" ] || return 0
	while IFS== read -r s v; do
		[ "$(sysctl -n "$s" 2>/dev/null)" = "$v" ] || sysctl -qw "$s=$v" 2>/dev/null ||
			say "warning: could not restore $s=$v"
	done <"$f"
	rm -f "$f"
}

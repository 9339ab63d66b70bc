# cleanup.sh: removing the pods, mounts, cgroups and files the cluster made.
# Sourced by cluster.sh.

# remove_containers [quiet]: kills and deletes every container of our
# containerd, pods included, while it still runs.
remove_containers() {
	local quiet=${1:-} ns ids
	component_alive containerd || return 0
	for ns in $(ctr_ namespaces ls -q 2>/dev/null); do
		ids=$(ctr_ -n "$ns" tasks ls -q 2>/dev/null || true)
		if [ -n "$ids" ]; then
			[ -n "$quiet" ] || say "killing $(wc -w <<<"$ids") containers ($ns)"
			# shellcheck disable=SC2086 # one word per ID
			ctr_ -n "$ns" tasks rm -f $ids >/dev/null 2>&1 || true
		fi
		ids=$(ctr_ -n "$ns" containers ls -q 2>/dev/null || true)
		# shellcheck disable=SC2086
		[ -z "$ids" ] || ctr_ -n "$ns" containers rm $ids >/dev/null 2>&1 || true
	done
}

# kill_leftover_containers: after containerd, kills its shims (their command
# line names our socket) and whatever still runs in the kubelet's cgroups
# (kubepods, the cgroupfs driver's fixed name, in every hierarchy).
kill_leftover_containers() {
	local pids=() shim_sockets=() pid i cmdline dir
	for dir in /proc/[0-9]*; do
		pid=${dir#/proc/}
		cmdline=$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null) || continue
		if [[ $cmdline == *containerd-shim* && $cmdline == *" $containerd_sock"* ]]; then
			pids+=("$pid")
			shim_sockets+=("$(shim_socket "$cmdline")")
		fi
	done
	for pid in $(find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
		pids+=("$pid")
	done
	[ ${#pids[@]} -gt 0 ] || return 0
	say "killing ${#pids[@]} leftover container processes"
	kill_pids KILL "${pids[@]}"
	# A killed shim leaves its socket, which containerd keeps outside the
	# state dir.
	rm -f "${shim_sockets[@]}"
	for ((i = 0; i < 50; i++)); do
		any_alive "${pids[@]}" || return 0
		sleep 0.1
	done
	say "warning: still running after SIGKILL: ${pids[*]}"
}

# shim_socket CMDLINE: the socket of the containerd shim with that command
# line: /run/containerd/s/ and the SHA-256 of ADDRESS/NAMESPACE/ID
# (containerd 1.6, runtime/v2/shim/util_unix.go SocketAddress).
shim_socket() {
	local args ns="" id="" addr="" i
	read -ra args <<<"$1"
	for ((i = 0; i < ${#args[@]} - 1; i++)); do
		case ${args[i]} in
		-namespace) ns=${args[i + 1]} ;;
		-id) id=${args[i + 1]} ;;
		-address) addr=${args[i + 1]} ;;
		esac
	done
	[ -n "$ns" ] && [ -n "$id" ] && [ -n "$addr" ] || return 0
	echo "/run/containerd/s/$(printf '%s' "$addr/$ns/$id" | sha256sum | cut -d' ' -f1)"
}

# any_alive PID...: true while one of the PIDs runs (a zombie has exited).
any_alive() {
	local pid stat
	for pid in "$@"; do
		stat=$(ps -o stat= -p "$pid" 2>/dev/null) && [ "${stat:0:1}" != Z ] && return 0
	done
	return 1
}

# unmount_state: unmounts everything mounted under the state dir (rootfs
# overlays, shm, pod volumes, network namespaces), deepest first.
unmount_state() {
	local m mounts
	for _ in 1 2 3; do
		mounts=$(awk -v p="$state/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | awk '{print length, $0}' |
			sort -rn | cut -d' ' -f2-)
		[ -n "$mounts" ] || return 0
		for m in $mounts; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done
	done
	say "warning: still mounted under $state: $(awk -v p="$state/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | tr '\n' ' ')"
}

# remove_cgroups: removes the kubelet's kubepods cgroups, deepest first, in
# every hierarchy.
remove_cgroups() {
	local dir
	for dir in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
		[ -d "$dir" ] || continue
		find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[ -d "$dir" ] && say "warning: could not remove cgroup $dir"
	done
	return 0
}

# Directories outside the state dir that containerd, its shims, the kubelet
# and libcni create where they please. note_host_dirs records which existed
# before `up`; remove_runtime_files removes the others once empty.
host_dirs=(/run/containerd /run/containerd/s /var/lib/cni /var/lib/cni/results /var/log/containers /var/log/pods)

note_host_dirs() {
	local d
	[ ! -f "$state/host-dirs.before" ] || return 0
	for d in "${host_dirs[@]}"; do
		[ ! -e "$d" ] || echo "$d"
	done >"$state/host-dirs.before"
}

# remove_runtime_files: what a fresh `up` must not find; the certificates,
# configs, logs and containerd's image store stay.
remove_runtime_files() {
	local f i
	rm -rf "${state:?}"/{etcd,kubelet,run,cni,pod-logs,pids}
	# The kubelet's symlinks to pod logs, and libcni's cache of our pods'
	# networks (each names its network namespace, under the state dir).
	for f in /var/log/containers/*; do
		[ -L "$f" ] && [[ $(readlink "$f") == "$state/"* ]] && rm -f "$f"
	done
	for f in /var/lib/cni/results/*; do
		[ -f "$f" ] && grep -qF "\"$state/" "$f" && rm -f "$f"
	done
	if [ -f "$state/host-dirs.before" ]; then
		for ((i = ${#host_dirs[@]} - 1; i >= 0; i--)); do
			grep -qxF "${host_dirs[i]}" "$state/host-dirs.before" || rmdir "${host_dirs[i]}" 2>/dev/null || true
		done
		rm -f "$state/host-dirs.before"
	fi
}

# util.sh: messages, the lock, and starting, watching and stopping the
# cluster's processes by PID. Sourced by cluster.sh.

say() { echo ">> $*"; }

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

# lock: one up or down at a time per state dir (held until the script exits).
lock() {
	exec 9>"$state/lock"
	flock -w 900 9 || die "another cluster.sh holds $state/lock"
}

# start NAME COMMAND...: runs COMMAND in a session of its own, output to
# logs/NAME.log, PID to pids/NAME.pid. COMMAND must name the state dir, which
# is how stop tells a PID of ours from a reused one.
start() {
	local name=$1
	shift
	local log=$state/logs/$name.log
	[ -f "$log" ] && mv -f "$log" "$log.prev"
	# Without job control a background job is no process-group leader, so
	# setsid makes the session in place and $! is the component's PID.
	# fd 9 is the lock: a component must not hold it.
	setsid "$@" >"$log" 2>&1 </dev/null 9>&- &
	echo $! >"$state/pids/$name.pid"
}

# pid_of NAME: the PID of a running component, or nothing.
pid_of() {
	local f=$state/pids/$1.pid pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	ours "$pid" || return 1
	echo "$pid"
}

# ours PID: true when PID runs (not a zombie) and its command line names the
# state dir.
ours() {
	local stat cmdline
	stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ "${stat:0:1}" != Z ] || return 1
	cmdline=$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null) || return 1
	[[ $cmdline == *"$state/"* ]]
}

component_alive() { pid_of "$1" >/dev/null; }

# stop NAME [quiet]: SIGTERM, up to 15 seconds, then SIGKILL.
stop() {
	local name=$1 quiet=${2:-} pid i
	if pid=$(pid_of "$name"); then
		[ -n "$quiet" ] || say "stopping $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 150; i++)); do
			ours "$pid" || break
			sleep 0.1
		done
		if ours "$pid"; then
			say "$name (pid $pid) ignored SIGTERM for 15s: killing it"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				ours "$pid" || break
				sleep 0.1
			done
		fi
	fi
	rm -f "$state/pids/$name.pid"
}

# kill_pids SIGNAL PID...: signals each PID that still exists.
kill_pids() {
	local sig=$1 pid
	shift
	for pid in "$@"; do
		kill "-$sig" "$pid" 2>/dev/null || true
	done
}

# wait_for WHAT SECONDS COMMAND...: retries COMMAND until it succeeds; on
# timeout fails, showing the logs of the components that died.
wait_for() {
	local what=$1 secs=$2 deadline
	shift 2
	say "waiting for $what"
	deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		check_components
		if ((SECONDS >= deadline)); then
			"$@" || true
			die "timed out after ${secs}s waiting for $what (logs in $state/logs)"
		fi
		sleep 0.5
	done
}

# check_components: fails when a component that was started has exited.
check_components() {
	local c
	for c in "${components[@]}"; do
		[ -f "$state/pids/$c.pid" ] || continue
		component_alive "$c" && continue
		{
			echo "cluster.sh: $c exited; the end of $state/logs/$c.log:"
			tail -n 25 "$state/logs/$c.log" 2>/dev/null | sed 's/^/    /'
		} >&2
		exit 1
	done
}

# ctr_ ARGS...: ctr against our containerd.
ctr_() { ctr --address "$containerd_sock" "$@"; }

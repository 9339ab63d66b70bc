#!/usr/bin/env bash
# run-local.sh run|demo|stop: the quick local loop behind `make run`,
# `make demo-api` and `make stop`.
#
#   run   Runs the operator in the foreground against the cluster of your
#         kubeconfig when one answers, else against a local API server
#         (kube-apiserver and etcd from bin/k8s, see hack/localapi), which it
#         starts in the background and leaves running after Ctrl-C.
#   demo  Starts the local API server and, in the background, the operator;
#         applies hack/demo/app.yaml and config/samples to namespace shop, and
#         waits until the operator has accepted them.
#   stop  Stops the operator and the local API server started here.
#
# Everything listens on 127.0.0.1. State (PID files, logs, kubeconfig) lives
# in $LOCAL_STATE, by default .local/. KUBEBUILDER_ASSETS overrides bin/k8s as
# the home of kube-apiserver and etcd; KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT=true
# adds their own output to .local/apiserver.log.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

state=${LOCAL_STATE:-$root/.local}
[[ $state == /* ]] || state=$root/$state
kubectl=$root/bin/k8s/kubectl
assets=${KUBEBUILDER_ASSETS:-$root/bin/k8s}
config_ns=skein-system
demo_ns=shop

local_kubeconfig=$state/kubeconfig
api_bin=$root/bin/skein-localapi
api_pid=$state/apiserver.pid
api_log=$state/apiserver.log
# The control plane's data and certificates; its path marks its processes.
api_tmp=$state/tmp
op_bin=$root/bin/skein-operator
op_pid=$state/operator.pid
op_log=$state/operator.log
op_health=127.0.0.1:8081

say() { echo ">> $*"; }

die() {
	echo "run-local.sh: $*" >&2
	exit 1
}

# die_with_log MESSAGE LOG: fails, showing the last lines of LOG.
die_with_log() {
	{
		echo "run-local.sh: $1, see $2"
		[ -f "$2" ] && tail -n 20 "$2" | sed 's/^/    /'
	} >&2
	exit 1
}

# alive PID: true while PID runs (a zombie has exited).
alive() {
	local stat
	stat=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${stat:0:1}" != Z ]
}

# running PIDFILE NAME: true when PIDFILE names a live process whose command
# line contains NAME (so a recycled PID is not mistaken for ours).
running() {
	local pid args
	pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && alive "$pid" || return 1
	args=$(ps -o args= -p "$pid" 2>/dev/null) && [[ $args == *"$2"* ]]
}

# wait_gone SECONDS PID...: waits until every PID has exited; false on timeout.
wait_gone() {
	local deadline=$((SECONDS + $1)) pid left
	shift
	while :; do
		left=
		for pid in "$@"; do
			alive "$pid" && left=1
		done
		[ -n "$left" ] || return 0
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

# terminate SECONDS PID...: SIGTERM, then SIGKILL for whatever is left after
# SECONDS.
terminate() {
	local timeout=$1
	shift
	[ $# -gt 0 ] || return 0
	kill -TERM "$@" 2>/dev/null || true
	if ! wait_gone "$timeout" "$@"; then
		echo "run-local.sh: still running after ${timeout}s, killing: $*" >&2
		kill -KILL "$@" 2>/dev/null || true
		wait_gone 5 "$@" || die "could not kill $*"
	fi
}

# stop_process PIDFILE NAME DESCRIPTION SECONDS: stops the process PIDFILE
# names, and any child it leaves behind, then removes PIDFILE.
stop_process() {
	local pidfile=$1 name=$2 what=$3 timeout=$4 pid children
	if running "$pidfile" "$name"; then
		pid=$(cat "$pidfile")
		# Read the children first: once the parent is gone they are re-parented.
		children=$(pgrep -P "$pid" || true)
		say "stopping $what (pid $pid)"
		terminate "$timeout" "$pid"
		# shellcheck disable=SC2086 # one PID per word
		terminate 10 $(for c in $children; do alive "$c" && echo "$c"; done)
	fi
	rm -f "$pidfile"
}

kube() { "$kubectl" --kubeconfig "$local_kubeconfig" "$@"; }

local_api_ready() {
	[ -f "$local_kubeconfig" ] && kube --request-timeout=5s get --raw=/readyz >/dev/null 2>&1
}

# user_cluster_reachable: true when $KUBECONFIG or ~/.kube/config names a
# cluster that answers. Without either, kubectl would try localhost:8080.
user_cluster_reachable() {
	[ -n "${KUBECONFIG:-}" ] || [ -f "$HOME/.kube/config" ] || return 1
	"$kubectl" --request-timeout=5s get --raw=/readyz >/dev/null 2>&1
}

check_tools() {
	command -v curl >/dev/null || die "curl not found: it checks the operator's readiness"
	[ -x "$kubectl" ] || die "$kubectl not found: run \`make kubectl\`"
	for bin in kube-apiserver etcd; do
		[ -x "$assets/$bin" ] || die "$assets/$bin not found: run \`make envtest-assets\`"
	done
}

build_operator() {
	[ -d cmd/manager ] || die "cmd/manager does not exist yet"
	say "building the operator (bin/skein-operator)"
	go build -o "$op_bin" ./cmd/manager || die "could not build the operator from ./cmd/manager"
}

# ensure_local_api: starts the local API server unless it already runs, waits
# until it answers, and creates the operator's config namespace.
ensure_local_api() {
	mkdir -p "$state"
	if running "$api_pid" skein-localapi; then
		say "reusing the local API server (pid $(cat "$api_pid"))"
	else
		rm -f "$api_pid" "$local_kubeconfig"
		# A control plane killed before it could clean up leaves its data here.
		rm -rf "$api_tmp"
		mkdir -p "$api_tmp"
		say "building the local API server (bin/skein-localapi)"
		go build -o "$api_bin" ./hack/localapi || die "could not build ./hack/localapi"
		say "starting kube-apiserver and etcd on 127.0.0.1 (log: $api_log)"
		# setsid: a Ctrl-C in this terminal stops the operator, not the API server.
		TMPDIR=$api_tmp setsid "$api_bin" --assets "$assets" --crds config/crd/bases \
			--kubeconfig-out "$local_kubeconfig" >/dev/null 2>"$api_log" </dev/null &
		echo $! >"$api_pid"
	fi

	local deadline=$((SECONDS + 60))
	until local_api_ready; do
		running "$api_pid" skein-localapi || die_with_log "the local API server exited" "$api_log"
		[ $SECONDS -lt $deadline ] || die_with_log "the local API server did not answer within 60s" "$api_log"
		sleep 0.5
	done
	kube create namespace "$config_ns" --dry-run=client -o yaml | kube apply -f - >/dev/null
	say "local API server ready; kubeconfig: $local_kubeconfig"
}

# operator_args KUBECONFIG: the operator's flags; no --kubeconfig when empty,
# so it reads $KUBECONFIG or ~/.kube/config like kubectl.
operator_args() {
	[ -z "$1" ] || echo "--kubeconfig=$1"
	echo "--metrics-bind-address=0"
	echo "--health-probe-bind-address=$op_health"
	echo "--leader-elect=false"
	echo "--config-namespace=$config_ns"
}

# run_operator_foreground KUBECONFIG: runs the operator until it exits or
# Ctrl-C; its PID file lets `make demo-api` and `make stop` find it meanwhile.
run_operator_foreground() {
	local args rc=0
	mapfile -t args < <(operator_args "$1")
	build_operator
	say "running the operator; Ctrl-C stops it"
	bash -c 'echo $$ >"$0"; exec "$@"' "$op_pid" "$op_bin" "${args[@]}" || rc=$?
	rm -f "$op_pid"
	return $rc
}

# start_operator_background: (re)starts the operator against the local API
# server, logging to $op_log.
start_operator_background() {
	local args
	mapfile -t args < <(operator_args "$local_kubeconfig")
	stop_process "$op_pid" skein-operator "the running operator" 15
	build_operator
	say "starting the operator in the background (log: $op_log)"
	setsid "$op_bin" "${args[@]}" >"$op_log" 2>&1 </dev/null &
	echo $! >"$op_pid"

	local deadline=$((SECONDS + 30))
	while :; do
		running "$op_pid" skein-operator || die_with_log "the operator exited" "$op_log"
		curl -sf --max-time 2 "http://$op_health/readyz" >/dev/null 2>&1 && break
		[ $SECONDS -lt $deadline ] || die_with_log "the operator was not ready within 30s" "$op_log"
		sleep 0.5
	done
}

cmd_run() {
	check_tools
	mkdir -p "$state"
	stop_process "$op_pid" skein-operator "the operator started earlier" 15
	if [ "${KUBECONFIG:-}" = "$local_kubeconfig" ]; then
		say "KUBECONFIG is the local API server's"
	elif user_cluster_reachable; then
		say "using the cluster of your kubeconfig: context $("$kubectl" config current-context 2>/dev/null || echo '(none)'), server $("$kubectl" config view --minify -o jsonpath='{.clusters[0].cluster.server}' 2>/dev/null)"
		say "installing the CRDs"
		"$kubectl" apply --server-side -f config/crd/bases
		run_operator_foreground ""
		return
	else
		say "no cluster answers through your kubeconfig (${KUBECONFIG:-~/.kube/config}); using a local API server"
	fi
	ensure_local_api
	echo
	echo "   Try: export KUBECONFIG=$local_kubeconfig; kubectl apply -f hack/demo/app.yaml; kubectl apply -k config/samples -n $demo_ns"
	echo "   (kubectl is $kubectl if none is on your PATH. Ctrl-C stops the operator;"
	echo "   the API server keeps running until \`make stop\`.)"
	echo
	local rc=0
	run_operator_foreground "$local_kubeconfig" || rc=$?
	echo
	[ $rc -eq 0 ] || die "the operator exited with status $rc; the local API server keeps running until \`make stop\`"
	say "operator stopped; the local API server keeps running until \`make stop\`"
}

# wait_accepted SECONDS: waits until every mesh object in the demo namespace
# is Accepted, failing early when the operator exits.
wait_accepted() {
	local deadline=$((SECONDS + $1))
	until kube wait --for=condition=Accepted --all -n "$demo_ns" --timeout=2s \
		meshservices,trafficpolicies,authorizationpolicies >/dev/null 2>&1; do
		running "$op_pid" skein-operator || die_with_log "the operator exited" "$op_log"
		if [ $SECONDS -ge $deadline ]; then
			kube get meshservices,trafficpolicies,authorizationpolicies -n "$demo_ns" -o wide >&2 || true
			die_with_log "not everything was Accepted within $1s" "$op_log"
		fi
	done
}

cmd_demo() {
	check_tools
	ensure_local_api
	start_operator_background
	say "creating namespace $demo_ns (skein.io/inject=enabled) and the demo app: frontend, catalog v1 and v2"
	kube apply -f hack/demo/app.yaml
	[ -f config/samples/kustomization.yaml ] || die "config/samples/kustomization.yaml does not exist yet"
	say "applying the samples in config/samples to namespace $demo_ns"
	kube apply -k config/samples -n "$demo_ns"
	say "waiting (up to 60s) for the operator to accept them"
	wait_accepted 60
	running "$op_pid" skein-operator || die_with_log "the operator exited" "$op_log"
	say "done"
	echo
	echo "\$ kubectl get meshservices,trafficpolicies,authorizationpolicies -n $demo_ns"
	kube get meshservices,trafficpolicies,authorizationpolicies -n "$demo_ns"
	cat <<EOF

This runs the control plane only: kube-apiserver and etcd, no kubelet, so the
pods stay Pending and Programmed stays Unknown (Pending). \`make demo\` shows
the same on the local single-node cluster, with running pods.

What to look at next (kubectl is $kubectl if none is on your PATH):
EOF
	hint "export KUBECONFIG=$local_kubeconfig"
	hint "kubectl describe meshservice catalog -n $demo_ns" "conditions, pods per subset, identities"
	hint "kubectl get meshservices -n $demo_ns -o wide -w" "watch; then, in another terminal:"
	hint "kubectl delete service catalog -n $demo_ns" "ResolvedRefs turns False: ServiceNotFound"
	hint "kubectl apply -f hack/demo/app.yaml" "and back to True: ResolvedRefs"
	hint "kubectl delete pod catalog-v2 -n $demo_ns" "subset v2 is empty: SubsetHasNoPods"
	hint "less $op_log" "what the operator did"
	hint "make stop" "stop the operator and the API server"
}

# hint COMMAND [COMMENT]: one line of the demo's "what to look at next".
hint() {
	if [ $# -gt 1 ]; then
		printf '  %-50s # %s\n' "$1" "$2"
	else
		printf '  %s\n' "$1"
	fi
}

cmd_stop() {
	stop_process "$op_pid" skein-operator "the operator" 15
	stop_process "$api_pid" skein-localapi "the local API server" 40
	# Control-plane processes whose parent was killed before it could stop
	# them; their data directories under $api_tmp mark them as ours.
	# Newest first: kube-apiserver shuts down quickly only while etcd answers.
	local pid
	for pid in $(pgrep -f -- "$api_tmp/" | sort -rn || true); do
		say "stopping control-plane process $pid left behind by the local API server"
		terminate 10 "$pid"
	done
	rm -rf "$api_tmp"
	rm -f "$local_kubeconfig"
	say "stopped"
}

case ${1:-} in
run) cmd_run ;;
demo) cmd_demo ;;
stop) cmd_stop ;;
*)
	echo "usage: $0 run|demo|stop" >&2
	exit 2
	;;
esac

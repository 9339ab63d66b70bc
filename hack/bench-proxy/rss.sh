#!/usr/bin/env bash
# skein-proxy's resident memory, quickly (issue 6): idle RSS and RSS with
# extra STATIC clusters, measured as bench.sh measures them (VmRSS from
# /proc one second after the proxy listens, GOMAXPROCS=1), without the
# load generators, HAProxy or nginx. No backend runs: idle RSS needs none.
#
#   hack/bench-proxy/rss.sh [--clusters=1000] [--rounds=3] [--wait=1]
#
# SKEIN_PROXY=path measures that binary instead of building ./cmd/proxy.
# Prints one line per case: the median VmRSS and VmHWM of the rounds, in MB.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

CLUSTERS=1000
ROUNDS=3
WAIT=1
for arg in "$@"; do
	case $arg in
	--clusters=*) CLUSTERS=${arg#*=} ;;
	--rounds=*) ROUNDS=${arg#*=} ;;
	--wait=*) WAIT=${arg#*=} ;;
	-h | --help) sed -n '2,10p' "$0"; exit 0 ;;
	*) echo "rss: unknown argument $arg" >&2; exit 2 ;;
	esac
done

WORK=$(mktemp -d /tmp/rss.XXXXXX)
PID=""
cleanup() {
	[ -z "$PID" ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; }
	rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && go build -o "$WORK/skeinboot" ./hack/bench-proxy/skeinboot)
BIN=${SKEIN_PROXY:-}
if [ -z "$BIN" ]; then
	(cd "$ROOT" && go build -o "$WORK/skein-proxy" ./cmd/proxy)
	BIN=$WORK/skein-proxy
fi

# port: a loopback port that no socket uses.
port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

field() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$2/status"; }

# once EXTRA: starts the proxy on a bootstrap with EXTRA more clusters, and
# prints "rss_kB hwm_kB" WAIT seconds after it listens.
once() {
	local lp i out
	lp=$(port)
	"$WORK/skeinboot" -template "$HERE/skein-bootstrap.yaml" -set SKEIN_PORT="$lp" \
		-set BACKEND_PORT="$(port)" -extra-clusters "$1" -out "$WORK/boot.yaml"
	GOMAXPROCS=1 "$BIN" -c "$WORK/boot.yaml" -admin-port="$(port)" -health-port="$(port)" \
		-metrics-port="$(port)" -outbound-port="$(port)" -inbound-port="$(port)" \
		>"$WORK/proxy.log" 2>&1 &
	PID=$!
	for i in $(seq 100); do
		ss -Htln "sport = :$lp" | grep -q . && break
		kill -0 "$PID" 2>/dev/null || { cat "$WORK/proxy.log" >&2; exit 1; }
		sleep 0.1
	done
	sleep "$WAIT"
	out="$(field VmRSS "$PID") $(field VmHWM "$PID")"
	kill "$PID"
	wait "$PID" 2>/dev/null || true
	PID=""
	echo "$out"
}

# median of the numbers on stdin, in MB.
median_mb() { sort -n | awk '{v[NR] = $1} END {printf "%.1f", v[int((NR + 1) / 2)] / 1024}'; }

for extra in 0 "$CLUSTERS"; do
	rss=() hwm=()
	for r in $(seq "$ROUNDS"); do
		read -r a b < <(once "$extra")
		rss+=("$a") hwm+=("$b")
	done
	printf 'clusters=%-5s VmRSS %s MB  VmHWM %s MB  (median of %s)\n' "$((extra + 1))" \
		"$(printf '%s\n' "${rss[@]}" | median_mb)" "$(printf '%s\n' "${hwm[@]}" | median_mb)" "$ROUNDS"
done

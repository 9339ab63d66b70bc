#!/usr/bin/env bash
# skein-proxy's resident memory, quickly (issue 6): idle RSS and RSS with
# extra STATIC clusters, measured as bench.sh measures them (VmRSS from
# /proc one second after the proxy listens, GOMAXPROCS=1), without
# HAProxy or nginx as proxies. No backend runs: idle RSS needs none.
# --load=SECONDS adds a third case: the nginx 1 KB backend of bench.sh,
# wrk (HTTP/1.1, 32 connections) then h2load (h2c, 32 x 10 streams) through
# the proxy for SECONDS each, and VmHWM after both, as bench.sh's "RSS
# under load" (no pinning, so only the memory is comparable).
#
#   hack/bench-proxy/rss.sh [--clusters=1000] [--rounds=3] [--wait=1] [--load=0]
#
# SKEIN_PROXY=path measures that binary instead of building ./cmd/proxy
# (the build honours GOFLAGS, e.g. GOFLAGS=-tags=grpcnotrace).
# Prints one line per case: the median VmRSS and VmHWM of the rounds, in MB.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

CLUSTERS=1000
ROUNDS=3
WAIT=1
LOAD=0
for arg in "$@"; do
	case $arg in
	--clusters=*) CLUSTERS=${arg#*=} ;;
	--rounds=*) ROUNDS=${arg#*=} ;;
	--wait=*) WAIT=${arg#*=} ;;
	--load=*) LOAD=${arg#*=} ;;
	-h | --help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "rss: unknown argument $arg" >&2; exit 2 ;;
	esac
done

WORK=$(mktemp -d /tmp/rss.XXXXXX)
PID=""
BACKEND=""
cleanup() {
	local p
	for p in $PID $BACKEND; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
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

# backend_up: the nginx 1 KB backend of bench.sh on BACKEND_PORT.
BACKEND_PORT=""
backend_up() {
	local b=$WORK/backend i h2
	mkdir -p "$b/www" "$b/logs" "$b/tmp"
	chmod 755 "$WORK"
	head -c 1024 /dev/zero | tr '\0' 'x' >"$b/www/1k"
	BACKEND_PORT=$(port)
	h2=$(port)
	sed -e "s|@PREFIX@|$b|g" -e "s|@H1@|$BACKEND_PORT|" -e "s|@H2@|$h2|" "$HERE/nginx-backend.conf" >"$b/nginx.conf"
	nginx -p "$b" -c "$b/nginx.conf" >"$b/logs/out.log" 2>&1 &
	BACKEND=$!
	for i in $(seq 100); do
		ss -Htln "sport = :$BACKEND_PORT" | grep -q . && return 0
		sleep 0.1
	done
	echo "rss: the nginx backend did not start" >&2
	exit 1
}

# once EXTRA [LOAD]: starts the proxy on a bootstrap with EXTRA more
# clusters, and prints "rss_kB hwm_kB" WAIT seconds after it listens, or
# after LOAD seconds of each load when LOAD is set.
once() {
	local lp i out
	lp=$(port)
	"$WORK/skeinboot" -template "$HERE/skein-bootstrap.yaml" -set SKEIN_PORT="$lp" \
		-set BACKEND_PORT="${BACKEND_PORT:-$(port)}" -extra-clusters "$1" -out "$WORK/boot.yaml"
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
	if [ -n "${2:-}" ]; then
		wrk -t1 -c32 -d"$2"s "http://127.0.0.1:$lp/1k" >"$WORK/wrk.out"
		h2load -t1 -c32 -m10 -D "$2" "http://127.0.0.1:$lp/1k" >"$WORK/h2load.out"
		grep -q "^Requests/sec" "$WORK/wrk.out" || { cat "$WORK/wrk.out" >&2; exit 1; }
	fi
	out="$(field VmRSS "$PID") $(field VmHWM "$PID")"
	kill "$PID"
	wait "$PID" 2>/dev/null || true
	PID=""
	echo "$out"
}

# median of the numbers on stdin, in MB.
median_mb() { sort -n | awk '{v[NR] = $1} END {printf "%.1f", v[int((NR + 1) / 2)] / 1024}'; }

# report NAME EXTRA [LOAD]: one case, ROUNDS times.
report() {
	local rss=() hwm=() r a b
	for r in $(seq "$ROUNDS"); do
		read -r a b < <(once "$2" "${3:-}")
		rss+=("$a") hwm+=("$b")
	done
	printf '%-14s VmRSS %5s MB  VmHWM %5s MB  (median of %s)\n' "$1" \
		"$(printf '%s\n' "${rss[@]}" | median_mb)" "$(printf '%s\n' "${hwm[@]}" | median_mb)" "$ROUNDS"
}

report "clusters=1" 0
report "clusters=$((CLUSTERS + 1))" "$CLUSTERS"
if [ "$LOAD" != 0 ]; then
	backend_up
	report "load ${LOAD}s+${LOAD}s" 0 "$LOAD"
fi

#!/usr/bin/env bash
# Side-by-side proxy benchmark (issue 6): direct, skein-proxy, HAProxy and
# nginx on loopback, each proxy pinned to one CPU, and one markdown table.
# A benchmark, not a test: it measures and prints, it asserts nothing.
# hack/bench-proxy/README.md says what is measured and why this way.
#
#   hack/bench-proxy/bench.sh [--rate=1000] [--duration=10] [--warmup=2]
#       [--conns=32] [--streams=10] [--lat-duration=10] [--clusters=1000] [--rounds=1]
#       [--targets="direct skein haproxy nginx"] [--out=FILE]
#
# --targets may add httputil: Go's httputil.ReverseProxy reading the same
# bootstrap as skein-proxy, for reference (and to try the skein column).
#
# SKEIN_PROXY=path picks the skein-proxy binary (default bin/skein-proxy).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

RATE=1000         # open-loop requests per second for the latency run
DURATION=10       # seconds of each saturation run
WARMUP=2          # seconds of warm-up before each run
CONNS=32          # connections of the saturation runs
STREAMS=10        # concurrent streams per HTTP/2 connection
LAT_DURATION=10   # seconds of the open-loop latency run
CLUSTERS=1000     # unused clusters for the memory measurement
ROUNDS=1          # rounds over all targets; each cell is the median
TARGETS="direct skein haproxy nginx"
OUT=""
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKEIN_PROXY=${SKEIN_PROXY:-$ROOT/bin/skein-proxy}

for arg in "$@"; do
	case $arg in
	--rate=*) RATE=${arg#*=} ;;
	--duration=*) DURATION=${arg#*=} ;;
	--warmup=*) WARMUP=${arg#*=} ;;
	--conns=*) CONNS=${arg#*=} ;;
	--streams=*) STREAMS=${arg#*=} ;;
	--lat-duration=*) LAT_DURATION=${arg#*=} ;;
	--clusters=*) CLUSTERS=${arg#*=} ;;
	--targets=*) TARGETS=${arg#*=} ;;
	--rounds=*) ROUNDS=${arg#*=} ;;
	--out=*) OUT=${arg#*=} ;;
	-h | --help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "bench-proxy: unknown argument $arg" >&2; exit 2 ;;
	esac
done

log() { echo "bench-proxy: $*" >&2; }
die() { log "$*"; exit 1; }

# --- packages ---------------------------------------------------------------

# ensure_packages installs the Debian packages whose commands are missing,
# with services kept from starting (policy-rc.d), and stops any that did.
ensure_packages() {
	local -A pkg_of=([haproxy]=haproxy [nginx]=nginx [wrk]=wrk [h2load]=nghttp2-client
		[taskset]=util-linux [pgrep]=procps [ss]=iproute2 [getconf]=libc-bin)
	local cmd missing=()
	for cmd in "${!pkg_of[@]}"; do
		command -v "$cmd" >/dev/null || missing+=("${pkg_of[$cmd]}")
	done
	[ ${#missing[@]} -eq 0 ] && return
	[ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root"
	log "installing ${missing[*]}"
	local made_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	local rc=0
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2 || rc=$?
	[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
	[ $rc -eq 0 ] || die "apt-get install failed"
	# With a policy-rc.d nothing started; without systemd nothing else does.
	# Check rather than trust: a packaged service must not hold port 80.
	local svc pidf
	for svc in nginx haproxy; do
		pidf=/run/$svc.pid
		if [ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
			log "stopping the $svc service the package started"
			service "$svc" stop >/dev/null 2>&1 || kill "$(cat "$pidf")"
		fi
	done
}

# --- processes and cleanup --------------------------------------------------

WORK=""
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill_group "$pid"
	done
	PIDS=()
	[ -n "$WORK" ] && rm -rf "$WORK"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CPU ENV... -- CMD...: runs CMD pinned to CPU in a session of its
# own (so that it and its children are stopped as one group), output to
# $WORK/NAME.log; its pid is left in STARTED.
STARTED=""
start() {
	local name=$1 cpu=$2
	shift 2
	local envs=()
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	env "${envs[@]}" setsid taskset -c "$cpu" "$@" >"$WORK/$name.log" 2>&1 </dev/null &
	STARTED=$!
	PIDS+=("$STARTED")
}

# kill_group PID: TERM the process group PID leads, KILL it after 5 s.
kill_group() {
	local pid=$1 i
	kill -TERM -- "-$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop() {
	local pid=$1 p keep=()
	kill_group "$pid"
	for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# wait_port PORT PID NAME: until something listens on 127.0.0.1:PORT.
wait_port() {
	local port=$1 pid=$2 name=$3 i
	for i in $(seq 100); do
		ss -Htln "sport = :$port" | grep -q . && return 0
		kill -0 "$pid" 2>/dev/null || { tail -5 "$WORK/$name.log" >&2; return 1; }
		sleep 0.1
	done
	log "$name: nothing listens on $port after 10 s"
	tail -5 "$WORK/$name.log" >&2
	return 1
}

# free_port VAR...: sets each VAR to a loopback port no socket uses and this
# run has not handed out yet.
USED_PORTS=" "
free_port() {
	local _fp_var _fp_port
	for _fp_var in "$@"; do
		while :; do
			_fp_port=$((20000 + RANDOM % 30000))
			case $USED_PORTS in *" $_fp_port "*) continue ;; esac
			ss -Htan "sport = :$_fp_port" | grep -q . && continue
			break
		done
		USED_PORTS+="$_fp_port "
		printf -v "$_fp_var" %s "$_fp_port"
	done
}

# --- /proc readings ---------------------------------------------------------

# pids_of PID: PID and its children (nginx's master and its worker).
pids_of() { echo "$1" "$(pgrep -P "$1" | tr '\n' ' ')"; }

# kb FIELD PID: the sum of /proc/<pid>/status FIELD (VmRSS, VmHWM) over the
# process and its children, in kB.
kb() {
	local field=$1 sum=0 p v
	for p in $(pids_of "$2"); do
		v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || true)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# ticks PID: utime+stime of the process and its children, in clock ticks.
ticks() {
	local sum=0 p v
	for p in $(pids_of "$1"); do
		# Fields after the ")" that ends comm: utime and stime are the 12th and 13th.
		v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || true)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# cpu_busy CPU: the CPU's busy time since boot (/proc/stat), in clock ticks.
cpu_busy() {
	awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# --- load -------------------------------------------------------------------

LOAD() { taskset -c "$LOAD_CPU" "$@"; }

# wrk_run URL SECONDS: HTTP/1.1 saturation; prints "rps requests errors".
wrk_run() {
	local out
	out=$(LOAD wrk -t1 -c"$CONNS" -d"$2"s "$1")
	echo "$out" >>"$WORK/wrk.out"
	awk '/requests in/ {n = $1} /^Requests\/sec:/ {r = $2}
		/Non-2xx/ {e += $NF} /Socket errors/ {gsub(",", ""); e += $4 + $6 + $8 + $10}
		END {printf "%.0f %d %d\n", r, n, e}' <<<"$out"
}

# h2load_run URL: HTTP/2 (h2c prior knowledge) saturation; prints "rps errors".
h2load_run() {
	local out
	out=$(LOAD h2load -t1 -c"$CONNS" -m"$STREAMS" --warm-up-time="$WARMUP" -D "$DURATION" "$1")
	echo "$out" >>"$WORK/h2load.out"
	# requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
	# status codes: N 2xx, N 3xx, N 4xx, N 5xx
	awk '/^requests:/ {e = $10 + $12 + $14} /^status codes:/ {e += $5 + $7 + $9}
		/^finished in/ {r = $4} END {printf "%.0f %d\n", r, e}' <<<"$out"
}

# latency_run URL: open-loop at RATE; prints "p50 p90 p99 lag_p99 errors",
# times in ms.
latency_run() {
	local out
	out=$(LOAD env GOMAXPROCS=1 "$WORK/loadgen" open -url "$1" -rate "$RATE" \
		-duration "${LAT_DURATION}s" -warmup "${WARMUP}s")
	echo "$1 $out" >>"$WORK/latency.out"
	log "  open loop: $out"
	awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
		END {printf "%.3f %.3f %.3f %.3f %d\n", v["p50_us"] / 1000, v["p90_us"] / 1000,
			v["p99_us"] / 1000, v["lag_p99_us"] / 1000, v["errors"]}' <<<"$out"
}

# --- results ----------------------------------------------------------------

# Results by target: each a list of values, one per round (add, med).
# shellcheck disable=SC2034
declare -A RPS1 RPS2 P50 P90 P99 LAG OTHER RSS_IDLE RSS_LOAD RSS_1K CPU1K NOTE

# add ARRAY TARGET VALUE: records one round's value.
add() {
	local -n _add_arr=$1
	[ -n "$3" ] && _add_arr[$2]+="$3 "
	return 0
}

# med ARRAY TARGET [FORMAT]: the median of the target's values, printed with
# the printf FORMAT (default %.3f); empty when there are none.
med() {
	local -n _med_arr=$1
	[ -n "${_med_arr[$2]:-}" ] || return 0
	tr ' ' '\n' <<<"${_med_arr[$2]}" | grep . | sort -g | awk -v f="${3:-%.3f}" '{v[NR] = $1}
		END {printf f "\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# note TARGET TEXT: adds a remark to the target's row (once).
note() {
	case "; ${NOTE[$1]:-}; " in *"; $2; "*) return 0 ;; esac
	NOTE[$1]="${NOTE[$1]:+${NOTE[$1]}; }$2"
}

# measure NAME PID URL_H1 URL_H2: one round of the load runs against one
# target; PID is the proxy's (empty for direct).
measure() {
	local name=$1 pid=$2 u1=$3 u2=$4
	if [ -n "$pid" ]; then
		sleep 1
		add RSS_IDLE "$name" "$(kb VmRSS "$pid")"
	fi
	"$WORK/loadgen" check -url "$u1" || { note "$name" "HTTP/1.1 check failed"; return 1; }
	"$WORK/loadgen" check -h2 -url "$u2" || { note "$name" "HTTP/2 check failed"; return 1; }

	log "$name: open loop at $RATE req/s for ${LAT_DURATION}s"
	local p50 p90 p99 lag errs b0 b1 t0=0 t1=0 s0 s1
	b0=$(cpu_busy "$PROXY_CPU") s0=$(date +%s.%N)
	[ -z "$pid" ] || t0=$(ticks "$pid")
	read -r p50 p90 p99 lag errs < <(latency_run "$u1")
	b1=$(cpu_busy "$PROXY_CPU") s1=$(date +%s.%N)
	[ -z "$pid" ] || t1=$(ticks "$pid")
	# The proxy CPU's busy share that was not the proxy's: other work on it.
	add OTHER "$name" "$(awk -v b=$((b1 - b0 - (t1 - t0))) -v s="$(awk -v a="$s0" -v b="$s1" 'BEGIN {print b - a}')" \
		-v hz="$(getconf CLK_TCK)" 'BEGIN {v = 100 * b / hz / s; printf "%.0f", v < 0 ? 0 : v}')"
	add P50 "$name" "$p50"
	add P90 "$name" "$p90"
	add P99 "$name" "$p99"
	add LAG "$name" "$lag"
	[ "${errs:-0}" = 0 ] || note "$name" "errors in the open-loop run"

	log "$name: HTTP/1.1 saturation, $CONNS connections, ${DURATION}s"
	wrk_run "$u1" "$WARMUP" >/dev/null
	local rps reqs
	[ -z "$pid" ] || t0=$(ticks "$pid")
	read -r rps reqs errs < <(wrk_run "$u1" "$DURATION")
	[ -z "$pid" ] || t1=$(ticks "$pid")
	add RPS1 "$name" "$rps"
	[ "${errs:-0}" = 0 ] || note "$name" "errors or non-2xx responses under HTTP/1.1 load"
	if [ -n "$pid" ] && [ "${reqs:-0}" -gt 0 ]; then
		add CPU1K "$name" "$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" \
			'BEGIN {printf "%.4f", d / hz / (n / 1000)}')"
	fi

	log "$name: HTTP/2 saturation, $CONNS connections x $STREAMS streams, ${DURATION}s"
	read -r rps errs < <(h2load_run "$u2")
	add RPS2 "$name" "$rps"
	[ "${errs:-0}" = 0 ] || note "$name" "errors or non-2xx responses under HTTP/2 load"
	[ -z "$pid" ] || add RSS_LOAD "$name" "$(kb VmHWM "$pid")"
	return 0
}

# idle_1k NAME PID PORT: RSS of a proxy started with CLUSTERS extra clusters.
idle_1k() {
	wait_port "$3" "$2" "$1" || return 1
	sleep 1
	add RSS_1K "${1%-1k}" "$(kb VmRSS "$2")"
	stop "$2"
}

BACKEND_H1="" BACKEND_H2=""

backend_up() {
	mkdir -p "$WORK/backend/www" "$WORK/backend/logs" "$WORK/backend/tmp"
	head -c 1024 /dev/zero | tr '\0' 'x' >"$WORK/backend/www/1k"
	free_port BACKEND_H1 BACKEND_H2
	sed -e "s|@PREFIX@|$WORK/backend|g" -e "s|@H1@|$BACKEND_H1|" -e "s|@H2@|$BACKEND_H2|" \
		"$HERE/nginx-backend.conf" >"$WORK/backend/nginx.conf"
	local pid
	start backend "$LOAD_CPU" -- nginx -p "$WORK/backend" -c "$WORK/backend/nginx.conf"
	pid=$STARTED
	if ! wait_port "$BACKEND_H1" "$pid" backend || ! wait_port "$BACKEND_H2" "$pid" backend; then
		die "the backend (nginx) did not start"
	fi
}

run_direct() {
	measure direct "" "http://127.0.0.1:$BACKEND_H1/1k" "http://127.0.0.1:$BACKEND_H2/1k"
}

# haproxy_cfg H1 H2 EXTRA: HAProxy's config with EXTRA unused backends.
haproxy_cfg() {
	sed -e "s|@H1@|$1|" -e "s|@H2@|$2|" -e "s|@BACKEND@|$BACKEND_H1|" "$HERE/haproxy.cfg"
	local i
	for ((i = 1; i <= $3; i++)); do
		printf '\nbackend extra-%04d\n\tserver s1 127.0.0.1:%s\n' "$i" "$BACKEND_H1"
	done
}

run_haproxy() {
	local h1 h2 pid
	free_port h1 h2
	haproxy_cfg "$h1" "$h2" 0 >"$WORK/haproxy.cfg"
	haproxy -c -q -f "$WORK/haproxy.cfg" || { note "haproxy" "config refused"; return 0; }
	start haproxy "$PROXY_CPU" -- haproxy -db -f "$WORK/haproxy.cfg"
	pid=$STARTED
	wait_port "$h2" "$pid" haproxy || { note "haproxy" "did not start"; return 0; }
	measure haproxy "$pid" "http://127.0.0.1:$h1/1k" "http://127.0.0.1:$h2/1k" || true
	stop "$pid"

	free_port h1 h2
	haproxy_cfg "$h1" "$h2" "$CLUSTERS" >"$WORK/haproxy-1k.cfg"
	start haproxy-1k "$PROXY_CPU" -- haproxy -db -f "$WORK/haproxy-1k.cfg"
	pid=$STARTED
	idle_1k haproxy-1k "$pid" "$h2" || note haproxy "the ${CLUSTERS}-backend config did not start"
}

# nginx_proxy_conf DIR H1 H2 EXTRA: the proxying nginx's config with EXTRA
# unused upstreams.
nginx_proxy_conf() {
	local extra="" i
	for ((i = 1; i <= $4; i++)); do
		extra+=$(printf '\n    upstream extra-%04d { server 127.0.0.1:%s; keepalive 64; }' "$i" "$BACKEND_H1")
	done
	sed -e "s|@PREFIX@|$1|g" -e "s|@H1@|$2|" -e "s|@H2@|$3|" -e "s|@BACKEND@|$BACKEND_H1|" \
		"$HERE/nginx-proxy.conf" | awk -v extra="$extra" '{print} /^ *# EXTRA_UPSTREAMS$/ {print extra}'
}

run_nginx() {
	local h1 h2 pid dir=$WORK/nginx
	mkdir -p "$dir/logs" "$dir/tmp" "$dir-1k/logs" "$dir-1k/tmp"
	free_port h1 h2
	nginx_proxy_conf "$dir" "$h1" "$h2" 0 >"$dir/nginx.conf"
	start nginx "$PROXY_CPU" -- nginx -p "$dir" -c "$dir/nginx.conf"
	pid=$STARTED
	wait_port "$h2" "$pid" nginx || { note "nginx" "did not start"; return 0; }
	measure nginx "$pid" "http://127.0.0.1:$h1/1k" "http://127.0.0.1:$h2/1k" || true
	stop "$pid"

	free_port h1 h2
	nginx_proxy_conf "$dir-1k" "$h1" "$h2" "$CLUSTERS" >"$dir-1k/nginx.conf"
	start nginx-1k "$PROXY_CPU" -- nginx -p "$dir-1k" -c "$dir-1k/nginx.conf"
	pid=$STARTED
	idle_1k nginx-1k "$pid" "$h2" || note nginx "the ${CLUSTERS}-upstream config did not start"
}

# skein_args HELP: sets SKEIN_ARGS to a free port for each port flag that
# skein-proxy's -h lists besides the listener's (health, admin, metrics,
# capture), so that it collides with no proxy or test running on this machine.
SKEIN_ARGS=()
skein_args() {
	local flag p
	SKEIN_ARGS=()
	for flag in health-port admin-port metrics-port outbound-port inbound-port; do
		if grep -qE "^\s+--?$flag\b" <<<"$1"; then
			free_port p
			SKEIN_ARGS+=("-$flag=$p")
		fi
	done
}

# run_bootstrapped NAME BINARY: a proxy configured by an Envoy bootstrap
# (-c): skein-proxy, or the httputil reference that reads the same file.
run_bootstrapped() {
	local name=$1 bin=$2 help port pid
	if [ ! -x "$bin" ]; then
		note "$name" "not built yet (no $bin)"
		return 0
	fi
	help=$(timeout 5 "$bin" -h 2>&1 || true)
	if ! grep -qE '^\s+--?c\b' <<<"$help"; then
		note "$name" "not built yet ($bin has no -c flag)"
		return 0
	fi
	free_port port
	"$WORK/skeinboot" -template "$HERE/skein-bootstrap.yaml" -set SKEIN_PORT="$port" \
		-set BACKEND_PORT="$BACKEND_H1" -out "$WORK/$name.yaml"
	skein_args "$help"
	start "$name" "$PROXY_CPU" GOMAXPROCS=1 -- "$bin" -c "$WORK/$name.yaml" "${SKEIN_ARGS[@]}"
	pid=$STARTED
	wait_port "$port" "$pid" "$name" || { note "$name" "did not start (its log is above)"; return 0; }
	# One port serves both protocols (codec_type AUTO).
	measure "$name" "$pid" "http://127.0.0.1:$port/1k" "http://127.0.0.1:$port/1k" || true
	stop "$pid"

	free_port port
	"$WORK/skeinboot" -template "$HERE/skein-bootstrap.yaml" -set SKEIN_PORT="$port" \
		-set BACKEND_PORT="$BACKEND_H1" -extra-clusters "$CLUSTERS" -out "$WORK/$name-1k.yaml"
	skein_args "$help"
	start "$name-1k" "$PROXY_CPU" GOMAXPROCS=1 -- "$bin" -c "$WORK/$name-1k.yaml" "${SKEIN_ARGS[@]}"
	pid=$STARTED
	idle_1k "$name-1k" "$pid" "$port" || note "$name" "the ${CLUSTERS}-cluster bootstrap did not start"
}

# --- table ------------------------------------------------------------------

# delta ABS BASE: "ABS (+ABS-BASE)".
delta() {
	[ -n "$1" ] || { echo "—"; return; }
	[ -n "$2" ] || { echo "$1"; return; }
	awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f (%+.3f)", a, a - b}'
}

ratio() {
	if [ -z "$1" ] || [ -z "$2" ] || [ "$2" = 0 ]; then echo "—"; return; fi
	awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'
}

# mbs ARRAY TARGET: the median in MB, or a dash.
mbs() {
	local v
	v=$(med "$1" "$2" %.0f)
	[ -n "$v" ] && mb "$v" || echo "—"
}

ALL_TARGETS="direct skein haproxy nginx httputil"

table() {
	local t label d1 d2 d50 d90 d99 r1 r2 lags="" others=""
	d1=$(med RPS1 direct %.0f) d2=$(med RPS2 direct %.0f)
	d50=$(med P50 direct) d90=$(med P90 direct) d99=$(med P99 direct)
	echo "| target | rps HTTP/1.1 | vs direct | rps HTTP/2 | vs direct | p50 ms (vs direct) | p90 ms (vs direct) | p99 ms (vs direct) | RSS idle MB | RSS load MB | RSS ${CLUSTERS} clusters MB | CPU s / 1k req |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for t in $ALL_TARGETS; do
		case " $TARGETS " in *" $t "*) ;; *) continue ;; esac
		case $t in
		skein) label=skein-proxy ;;
		httputil) label="httputil (reference)" ;;
		*) label=$t ;;
		esac
		r1=$(med RPS1 "$t" %.0f) r2=$(med RPS2 "$t" %.0f)
		if [ -z "$r1" ]; then
			echo "| $label | ${NOTE[$t]:-no result} | | | | | | | | | | |"
			continue
		fi
		if [ "$t" = direct ]; then
			printf '| %s | %s | %s | %s | %s | %s | %s | %s | — | — | — | — |\n' "$label" \
				"$r1" "$(ratio "$r1" "$d1")" "${r2:-—}" "$(ratio "$r2" "$d2")" \
				"$(delta "$d50" "")" "$(delta "$d90" "")" "$(delta "$d99" "")"
		else
			printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
				"$r1" "$(ratio "$r1" "$d1")" "${r2:-—}" "$(ratio "$r2" "$d2")" \
				"$(delta "$(med P50 "$t")" "$d50")" "$(delta "$(med P90 "$t")" "$d90")" \
				"$(delta "$(med P99 "$t")" "$d99")" \
				"$(mbs RSS_IDLE "$t")" "$(mbs RSS_LOAD "$t")" "$(mbs RSS_1K "$t")" \
				"$(med CPU1K "$t" %.4f)"
		fi
		lags+="${lags:+, }$t $(med LAG "$t" %.1f)"
		others+="${others:+, }$t $(med OTHER "$t" %.0f)%"
	done
	echo
	for t in $ALL_TARGETS; do
		[ -n "$(med RPS1 "$t")" ] && [ -n "${NOTE[$t]:-}" ] && echo "- $t: ${NOTE[$t]}"
	done
	echo "- Noise in the latency runs: the open-loop generator's dispatch lag p99 in ms (Go's timers tick at ~1 ms; much more means the load CPU was contended): $lags; other work on the proxy CPU $PROXY_CPU, share of its time: $others."
	echo "- Versions: $(haproxy -v | head -1 | awk '{print "HAProxy", $3}'), $(nginx -v 2>&1 | sed 's|.*/|nginx |'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $(h2load --version | sed 's|.*nghttp2/|h2load (nghttp2) |'), $(go version | awk '{print $3}')${SKEIN_REV:+, skein-proxy $SKEIN_REV}."
	echo "- Setup: each proxy pinned to CPU $PROXY_CPU (Go ones with GOMAXPROCS=1), load generators and the nginx 1 KB backend on CPU $LOAD_CPU; saturation ${DURATION}s after ${WARMUP}s warm-up, $CONNS connections (HTTP/2: x $STREAMS streams); latency open-loop at $RATE req/s over HTTP/1.1 for ${LAT_DURATION}s; RSS load is the peak (VmHWM) after both saturation runs; nginx's RSS and CPU are its master's and worker's together; CPU over the HTTP/1.1 saturation run; each cell the median of $ROUNDS round(s)."
	echo "- Machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load average before the run $LOADAVG."
}

# --- main -------------------------------------------------------------------

for t in $TARGETS; do
	case " $ALL_TARGETS " in *" $t "*) ;; *) die "unknown target $t (known: $ALL_TARGETS)" ;; esac
done
ensure_packages
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (one for the proxy, one for the load)"
WORK=$(mktemp -d /tmp/bench-proxy.XXXXXX)
chmod 755 "$WORK" # nginx workers run as nobody and read the 1 KB file
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

log "building the load generator and the bootstrap tool"
(cd "$ROOT" && go build -o "$WORK/loadgen" ./hack/bench-proxy/loadgen &&
	go build -o "$WORK/skeinboot" ./hack/bench-proxy/skeinboot &&
	go build -o "$WORK/httputilproxy" ./hack/bench-proxy/httputilproxy)
# The commit skein-proxy was built from, as Go recorded it.
SKEIN_REV=""
if [ -x "$SKEIN_PROXY" ]; then
	SKEIN_REV=$(go version -m "$SKEIN_PROXY" 2>/dev/null | awk '$2 == "vcs.revision" {r = substr($3, 1, 12)}
		$2 == "vcs.modified" && $3 == "true" {m = "-dirty"} END {if (r != "") print r m}' || true)
fi

backend_up
log "backend: nginx on 127.0.0.1:$BACKEND_H1 (HTTP/1.1) and :$BACKEND_H2 (h2c)"
for round in $(seq "$ROUNDS"); do
	[ "$ROUNDS" = 1 ] || log "round $round of $ROUNDS"
	for t in $TARGETS; do
		case $t in
		direct) run_direct || true ;;
		skein) run_bootstrapped skein "$SKEIN_PROXY" ;;
		httputil) run_bootstrapped httputil "$WORK/httputilproxy" ;;
		haproxy) run_haproxy ;;
		nginx) run_nginx ;;
		esac
	done
done

if [ -n "$OUT" ]; then
	table | tee "$OUT"
else
	table
fi

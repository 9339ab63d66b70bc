#!/usr/bin/env bash
# HTTP/2 conformance of skein-proxy's downstream server (make h2spec): runs
# h2spec (github.com/summerwind/h2spec) with h2c prior knowledge against
# skein-proxy on loopback, configured like `make bench-proxy` (codec AUTO,
# one route to an HTTP/1.1 backend, here a tiny Go server), and fails on any
# failed case that is not in ALLOWED below.
#
#   hack/h2spec.sh [h2spec arguments...]
#
# Arguments go to h2spec: --strict adds its strict cases, "http2/5.1" runs
# one section, -v logs the frames. Everything listens on 127.0.0.1 only.
#
# SKEIN_PROXY=path picks the skein-proxy binary (default bin/skein-proxy);
# H2SPEC=path the h2spec binary (default bin/h2spec), built from the Go
# module proxy at H2SPEC_VERSION unless it is there at that version.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SKEIN_PROXY=${SKEIN_PROXY:-$ROOT/bin/skein-proxy}
H2SPEC=${H2SPEC:-$ROOT/bin/h2spec}
# The newest h2spec the module proxy serves. It has no go.mod, so the
# versions of its dependencies are pinned here too (a go install @version
# would take whatever is newest).
H2SPEC_VERSION=${H2SPEC_VERSION:-v2.2.1+incompatible}
H2SPEC_DEPS=(golang.org/x/net@v0.63.0 github.com/spf13/cobra@v1.10.2 github.com/fatih/color@v1.19.0)

# ALLOWED: the h2spec cases that may fail, as "SECTION: DESCRIPTION" the way
# its JUnit report names them (package and classname), each with why.
ALLOWED=(
	# http2/3.5/2. With codec AUTO the port serves HTTP/1.1 too, so bytes
	# that are not the connection preface are an HTTP/1.1 request: the
	# proxy answers 400 with Connection: close and closes, where h2spec
	# wants the bare close of an HTTP/2-only endpoint (RFC 9113 3.4) and
	# reads the 400 as a broken frame. net/http's h2c handler fails it the
	# same way. sidecar/httpproxy/doc.go, "# HTTP/2".
	"http2/3.5: Sends invalid connection preface"
)

log() { echo "h2spec.sh: $*" >&2; }
die() { log "$*"; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in a session of its own (stopped as a group),
# output to $WORK/NAME.log; its pid is left in STARTED.
STARTED=""
start() {
	local name=$1
	shift
	setsid "$@" >"$WORK/$name.log" 2>&1 </dev/null &
	STARTED=$!
	PIDS+=("$STARTED")
}

# listening PORT: whether something accepts connections on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port VAR...: sets each VAR to a loopback port below 32000 that
# nothing listens on and this run has not handed out yet.
USED_PORTS=" "
free_port() {
	local _fp_var _fp_port
	for _fp_var in "$@"; do
		while :; do
			_fp_port=$((20000 + RANDOM % 12000))
			case $USED_PORTS in *" $_fp_port "*) continue ;; esac
			listening "$_fp_port" && continue
			break
		done
		USED_PORTS+="$_fp_port "
		printf -v "$_fp_var" %s "$_fp_port"
	done
}

# wait_port PORT PID NAME: until PORT accepts connections, while PID lives.
wait_port() {
	local i
	for i in $(seq 100); do
		listening "$1" && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	tail -20 "$WORK/$3.log" >&2
	die "$3 does not listen on 127.0.0.1:$1"
}

# --- h2spec -----------------------------------------------------------------

h2spec_version() {
	go version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/summerwind/h2spec" { print $3 }'
}

if [ "$(h2spec_version "$H2SPEC")" != "$H2SPEC_VERSION" ]; then
	log "building h2spec $H2SPEC_VERSION into $(dirname "$H2SPEC")"
	mkdir -p "$(dirname "$H2SPEC")"
	# Outside this module: h2spec is no dependency of Skein.
	(
		cd "$WORK"
		mkdir h2spec-build && cd h2spec-build
		export GOFLAGS=-mod=mod
		go mod init h2spec-build >/dev/null 2>&1
		go get "github.com/summerwind/h2spec@$H2SPEC_VERSION" "${H2SPEC_DEPS[@]}"
		go build -o "$H2SPEC" github.com/summerwind/h2spec/cmd/h2spec
	) || die "could not build h2spec $H2SPEC_VERSION"
fi

# --- the backend and the proxy ----------------------------------------------

[ -x "$SKEIN_PROXY" ] || die "no $SKEIN_PROXY: run make proxy, or set SKEIN_PROXY"

# The backend answers every request with a short body once it read the
# request's, as a service behind the proxy would.
cat >"$WORK/backend.go" <<'EOF'
package main

import (
	"io"
	"net/http"
	"os"
)

func main() {
	h := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello from the backend\n")
	}
	panic(http.ListenAndServe("127.0.0.1:"+os.Args[1], http.HandlerFunc(h)))
}
EOF
(cd "$WORK" && GOFLAGS= go build -o backend backend.go) || die "could not build the backend"
(cd "$ROOT" && go build -o "$WORK/skeinboot" ./hack/bench-proxy/skeinboot) || die "could not build skeinboot"

free_port BACKEND_PORT PROXY_PORT
start backend "$WORK/backend" "$BACKEND_PORT"
wait_port "$BACKEND_PORT" "$STARTED" backend

"$WORK/skeinboot" -template "$ROOT/hack/bench-proxy/skein-bootstrap.yaml" \
	-set SKEIN_PORT="$PROXY_PORT" -set BACKEND_PORT="$BACKEND_PORT" -out "$WORK/bootstrap.yaml"
# A free port for each of the proxy's other listeners its -h lists.
help=$(timeout 5 "$SKEIN_PROXY" -h 2>&1 || true)
args=()
for flag in admin-port health-port metrics-port outbound-port inbound-port; do
	if grep -qE "^\s+--?$flag\b" <<<"$help"; then
		free_port p
		args+=("-$flag=$p")
	fi
done
start proxy "$SKEIN_PROXY" -c "$WORK/bootstrap.yaml" "${args[@]}"
wait_port "$PROXY_PORT" "$STARTED" proxy

# --- the run ----------------------------------------------------------------

log "h2spec $H2SPEC_VERSION against skein-proxy on 127.0.0.1:$PROXY_PORT (h2c prior knowledge)"
"$H2SPEC" -h 127.0.0.1 -p "$PROXY_PORT" -o 5 -j "$WORK/report.xml" "$@" || true
[ -s "$WORK/report.xml" ] || die "h2spec wrote no report"

# The failed cases, one "SECTION: DESCRIPTION" a line.
failed=$(awk '
	function attr(name,   m) {
		if (match($0, name "=\"[^\"]*\"")) {
			m = substr($0, RSTART + length(name) + 2, RLENGTH - length(name) - 3)
			gsub(/&#34;|&quot;/, "\"", m); gsub(/&#39;|&apos;/, "\x27", m)
			gsub(/&lt;/, "<", m); gsub(/&gt;/, ">", m); gsub(/&amp;/, "\\&", m)
			return m
		}
	}
	/<testcase / { cur = attr("package") ": " attr("classname") }
	/<(failure|error)[ >]/ { print cur }
' "$WORK/report.xml")
total=$(grep -c '<testcase ' "$WORK/report.xml" || true)
[ "$total" -gt 0 ] || die "h2spec ran no case"

unexpected=() allowed=()
while IFS= read -r c; do
	[ -n "$c" ] || continue
	ok=""
	for a in "${ALLOWED[@]}"; do [ "$c" = "$a" ] && ok=1; done
	if [ -n "$ok" ]; then allowed+=("$c"); else unexpected+=("$c"); fi
done <<<"$failed"

for a in "${ALLOWED[@]}"; do
	grep -qxF "$a" <<<"$failed" || log "allowed to fail, but passed (or did not run): $a"
done
log "$total cases: ${#allowed[@]} failed as allowed, ${#unexpected[@]} failed unexpectedly"
if [ ${#unexpected[@]} -gt 0 ]; then
	printf '  %s\n' "${unexpected[@]}" >&2
	exit 1
fi

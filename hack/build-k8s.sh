#!/usr/bin/env bash
# build-k8s.sh DEST COMPONENT...
# Builds Kubernetes components (kube-apiserver, kubelet, kubectl, ...), etcd
# and CoreDNS from source through the Go module proxy, at the versions pinned
# in hack/tools/*/go.mod, into DEST. A binary already present at the pinned
# version is skipped, so a warm run costs a few milliseconds. The Kubernetes
# components that are missing are built by one `go build`, so the packages
# they share are compiled once.
set -euo pipefail

dest=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

k8s_version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$here/tools/kubernetes/go.mod")
etcd_version=$(awk '$1=="require" && $2=="go.etcd.io/etcd/server/v3" {print $3}' "$here/tools/etcd/go.mod")
coredns_version=$(awk '$1=="require" && $2=="github.com/coredns/coredns" {print $3}' "$here/tools/coredns/go.mod")

# stamp_ok NAME VERSION: true when DEST/NAME was built at VERSION.
stamp_ok() { [ -x "$dest/$1" ] && [ "$(cat "$dest/.$1.version" 2>/dev/null)" = "$2" ]; }

k8s_ldflags() {
	local v=$1 major minor
	major=$(echo "${v#v}" | cut -d. -f1)
	minor=$(echo "${v#v}" | cut -d. -f2)
	local flags="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags="$flags -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		flags="$flags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$flags"
}

k8s_missing=()
for c in "$@"; do
	case $c in
	etcd)
		stamp_ok etcd "$etcd_version" && continue
		echo ">> building etcd $etcd_version from source (about 2 minutes cold)"
		(cd "$here/tools/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dest/etcd" .)
		echo "$etcd_version" > "$dest/.etcd.version"
		;;
	coredns)
		stamp_ok coredns "$coredns_version" && continue
		echo ">> building coredns $coredns_version from source (about 2 minutes cold)"
		(cd "$here/tools/coredns" && CGO_ENABLED=0 go build -trimpath \
			-ldflags "-s -w" -o "$dest/coredns" .)
		echo "$coredns_version" > "$dest/.coredns.version"
		;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | kubectl)
		stamp_ok "$c" "$k8s_version" || k8s_missing+=("$c")
		;;
	*)
		echo "build-k8s.sh: unknown component $c" >&2
		exit 2
		;;
	esac
done

if [ ${#k8s_missing[@]} -gt 0 ]; then
	echo ">> building ${k8s_missing[*]} $k8s_version from source (the first Kubernetes build takes about 10 minutes on 2 cores)"
	pkgs=()
	for c in "${k8s_missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
	# All static, kubelet included: the only cgo it would use is the C
	# resolver and user lookup, whose pure-Go versions serve it as well.
	out=$(mktemp -d "$dest/.build.XXXXXX")
	trap 'rm -rf "$out"' EXIT
	(cd "$here/tools/kubernetes" && CGO_ENABLED=0 go build -trimpath -tags providerless \
		-ldflags "$(k8s_ldflags "$k8s_version")" -o "$out/" "${pkgs[@]}")
	for c in "${k8s_missing[@]}"; do
		mv -f "$out/$c" "$dest/$c"
		echo "$k8s_version" > "$dest/.$c.version"
	done
fi

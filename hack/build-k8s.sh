#!/usr/bin/env bash
# build-k8s.sh DEST COMPONENT...
# Builds Kubernetes components (kube-apiserver, kubelet, kubectl, ...) and etcd
# from source through the Go module proxy, at the versions pinned in
# hack/tools/*/go.mod, into DEST. A binary already present at the pinned
# version is skipped, so a warm run costs a few milliseconds.
set -euo pipefail

dest=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

k8s_version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$here/tools/kubernetes/go.mod")
etcd_version=$(awk '$1=="require" && $2=="go.etcd.io/etcd/server/v3" {print $3}' "$here/tools/etcd/go.mod")

# stamp NAME VERSION: true when DEST/NAME was built at VERSION.
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

for c in "$@"; do
	case $c in
	etcd)
		stamp_ok etcd "$etcd_version" && continue
		echo ">> building etcd $etcd_version from source (about 2 minutes cold)"
		(cd "$here/tools/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dest/etcd" .)
		echo "$etcd_version" > "$dest/.etcd.version"
		;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | kubectl)
		stamp_ok "$c" "$k8s_version" && continue
		echo ">> building $c $k8s_version from source (the first Kubernetes build takes about 10 minutes on 2 cores)"
		cgo=0
		[ "$c" = kubelet ] && cgo=1
		(cd "$here/tools/kubernetes" && CGO_ENABLED=$cgo go build -trimpath -tags providerless \
			-ldflags "$(k8s_ldflags "$k8s_version")" -o "$dest/$c" "k8s.io/kubernetes/cmd/$c")
		echo "$k8s_version" > "$dest/.$c.version"
		;;
	*)
		echo "build-k8s.sh: unknown component $c" >&2
		exit 2
		;;
	esac
done

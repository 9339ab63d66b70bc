#!/usr/bin/env bash
# load.sh SOCKET [TARBALL...]: imports image tarballs (by default every
# bin/images/*.tar that `make images` wrote) into the containerd listening on
# SOCKET, in the k8s.io namespace that its CRI plugin (and so the kubelet)
# uses, unpacked for $SNAPSHOTTER (containerd's default, overlayfs, when
# unset; it must be the CRI plugin's snapshotter). Then checks with
# `ctr images ls` that every tarball's name is there.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ $# -lt 1 ]; then
	echo "usage: $0 SOCKET [TARBALL...]" >&2
	exit 2
fi
sock=$1
shift
tarballs=("$@")
if [ ${#tarballs[@]} -eq 0 ]; then
	shopt -s nullglob
	tarballs=(bin/images/*.tar)
	if [ ${#tarballs[@]} -eq 0 ]; then
		echo "load: no bin/images/*.tar; run make images first" >&2
		exit 1
	fi
fi
ctr=(ctr --address "$sock" --namespace k8s.io)
import_flags=()
[ -n "${SNAPSHOTTER:-}" ] && import_flags+=(--snapshotter "$SNAPSHOTTER")

# repo_tags prints the names a docker-archive tarball's manifest.json gives.
repo_tags() {
	tar -xOf "$1" manifest.json | grep -o '"RepoTags":\[[^]]*\]' | grep -o '"[^"]*"' | tail -n +2 | tr -d '"'
}

want=()
for t in "${tarballs[@]}"; do
	if [ ! -f "$t" ]; then
		echo "load: no tarball $t" >&2
		exit 1
	fi
	names=$(repo_tags "$t")
	if [ -z "$names" ]; then
		echo "load: $t names no image (no RepoTags in its manifest.json)" >&2
		exit 1
	fi
	"${ctr[@]}" images import "${import_flags[@]}" "$t" >/dev/null
	for n in $names; do want+=("$n"); done
done

have=$("${ctr[@]}" images ls --quiet)
missing=0
for n in "${want[@]}"; do
	if grep -qxF "$n" <<<"$have"; then
		echo "loaded $n"
	else
		echo "load: $n is not in containerd after the import" >&2
		missing=1
	fi
done
exit "$missing"

#!/usr/bin/env bash
# verify-generated.sh: regenerates code and manifests and fails if that
# changed anything, that is, if a generated file in the tree was stale. It
# compares against the tree as it was, not against git, so it works on
# uncommitted changes too. Also fails when go.mod or go.sum are not tidy.
set -euo pipefail
cd "$(dirname "$0")/.."
make_cmd=${MAKE:-make}

# The generated files: never edited by hand (STYLE.md 18).
generated=(api/v1alpha1/zz_generated.deepcopy.go config/crd/bases config/rbac/role.yaml)

before=$(mktemp -d)
trap 'rm -rf "$before"' EXIT
for path in "${generated[@]}"; do
	if [ -e "$path" ]; then
		mkdir -p "$before/$(dirname "$path")"
		cp -R "$path" "$before/$path"
	fi
done

"$make_cmd" --no-print-directory manifests generate >/dev/null

stale=0
for path in "${generated[@]}"; do
	if ! diff -ruN "$before/$path" "$path" >"$before/diff" 2>&1; then
		echo "verify: $path was stale; it is regenerated now, commit the result:" >&2
		sed 's/^/    /' "$before/diff" | head -40 >&2
		stale=1
	fi
done
if ! go mod tidy -diff >"$before/tidy" 2>&1; then
	echo "verify: go.mod or go.sum is not tidy; run go mod tidy:" >&2
	sed 's/^/    /' "$before/tidy" | head -20 >&2
	stale=1
fi
[ "$stale" = 0 ] && echo "verify: generated files and go.mod are up to date"
exit "$stale"

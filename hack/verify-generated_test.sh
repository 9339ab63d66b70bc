#!/usr/bin/env bash
# verify-generated_test.sh: proves that `make verify` fails when a generated
# file is stale. In a copy of the working tree it checks that verify passes
# as is, fails after a CRD is edited by hand, and fails after an API type
# changes without regeneration. Prints "N passed, N failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A copy of the tree as it is now: tracked and untracked files, not ignored ones.
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$work"

passed=0
failed=0
# expect OUTCOME NAME: runs make verify in the copy; OUTCOME is pass or fail.
expect() {
	local want=$1 name=$2 got=pass
	make -C "$work" --no-print-directory verify LOCALBIN="$root/bin" >"$work/.verify.log" 2>&1 || got=fail
	if [ "$got" = "$want" ]; then
		echo "--- PASS: verify $name ($got as expected)"
		passed=$((passed + 1))
	else
		echo "--- FAIL: verify $name: wanted $want, got $got"
		sed 's/^/    /' "$work/.verify.log" | tail -20
		failed=$((failed + 1))
	fi
}

expect pass "on the tree as it is"

crd=$work/config/crd/bases/mesh.skein.io_meshservices.yaml
sed -i 's/shortNames:/shortNames:\n    - stale/' "$crd"
expect fail "after a CRD was edited by hand"
expect pass "after it regenerated the CRD"

types=$work/api/v1alpha1/meshservice_types.go
sed -i 's|^\t// +kubebuilder:validation:MaxItems=32\n\tSubsets|&|; s|^\tExportTo \[\]string `json:"exportTo,omitempty"`|&\n\n\t// stale is a field added without regenerating.\n\t// +optional\n\tStale string `json:"stale,omitempty"`|' "$types"
grep -q 'Stale string' "$types" || { echo "--- FAIL: could not edit $types"; exit 1; }
expect fail "after an API type changed without regeneration"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

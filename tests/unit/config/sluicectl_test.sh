#!/usr/bin/env bash
# sluicectl validate/explain as a user runs them: exit codes, where output
# goes, and the file:line:col format. Usage: sluicectl_test.sh PATH_TO_SLUICECTL
set -uo pipefail
ctl=$1
root=${SLUICE_SOURCE_ROOT:?}
tmp=$(mktemp -d /tmp/slc-config-ctl.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
check() {   # check DESCRIPTION COMMAND... : the command must succeed
  local what=$1; shift
  if "$@"; then echo "PASS $what"; else echo "FAIL $what"; failures=$((failures + 1)); fi
}

"$ctl" validate "$root/docs/examples/productpage" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "validate of a valid directory exits 0" test "$rc" -eq 0
check "validate reports a summary on stdout" grep -q '^valid: 3 files, 1 service, 2 subsets, 4 endpoints' "$tmp/out"

cat >"$tmp/vs.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - destination: {host: productpage, subset: v3}
    corsPolicy: {}
YAML
cat >"$tmp/dr.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  subsets: [{name: v1, labels: {version: v1}}]
YAML
cp "$root"/docs/examples/productpage/serviceentry.yaml "$root"/docs/examples/productpage/workloadentries.yaml "$tmp/"
"$ctl" validate "$tmp" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "validate of an invalid directory exits 1" test "$rc" -eq 1
check "the error is a file:line:col line on stderr" \
  grep -qF "$tmp/vs.yaml:8:48: error: unknown subset 'v3' for host 'productpage'" "$tmp/err"
check "warnings are printed too" grep -qF "$tmp/vs.yaml:9:5: warning: VirtualService field 'http[0].corsPolicy'" "$tmp/err"
check "nothing on stdout when invalid" test ! -s "$tmp/out"

sed -i 's/subset: v3/subset: v1/' "$tmp/vs.yaml"
"$ctl" validate "$tmp" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "warnings alone still exit 0" test "$rc" -eq 0
"$ctl" validate --warnings-as-errors "$tmp" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "--warnings-as-errors makes them fail" test "$rc" -eq 1

"$ctl" validate /nonexistent/slc-config >"$tmp/out" 2>"$tmp/err"; rc=$?
check "a missing path is a usage error (2)" test "$rc" -eq 2
check "and says so" grep -qF "/nonexistent/slc-config: error: no such file or directory" "$tmp/err"

"$ctl" explain --json "$root/docs/examples/productpage" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "explain --json exits 0" test "$rc" -eq 0
check "explain --json prints schema 1 JSON" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["schema"] == 1, j["schema"]
svc = j["services"][0]
assert [p["plane"] for p in svc["ports"]] == ["L7", "L4"]
' "$tmp/out"
"$ctl" explain "$root/docs/examples/productpage" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "explain prints tables" grep -q '10.96.0.10:9080  http/HTTP  L7' "$tmp/out"
"$ctl" --help >"$tmp/out" 2>&1
check "--help lists the commands" grep -q 'validate' "$tmp/out"
"$ctl" frobnicate >"$tmp/out" 2>&1; rc=$?
check "an unknown command is a usage error" test "$rc" -eq 2

echo "$failures failure(s)"
exit $((failures > 0))

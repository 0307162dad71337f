#!/usr/bin/env bash
# deploy/kubernetes/ is valid: Debian's kubectl 1.20 maps and dry-runs every
# object (`kubectl apply --dry-run=client --validate=false`; kubectl 1.20
# needs an API server's discovery for that, so it talks to the test suite's
# fake one), and check_manifests.py makes the schema-level checks (required
# fields, the documented capabilities and nothing more, RBAC verbs only get,
# list and watch on exactly what sluiced watches).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
skip_or_fail() {
  if [[ "${CI:-}" == "true" ]]; then echo "FAIL: missing in CI: $*"; exit 1; fi
  echo "SKIP: missing: $*"
  exit 77
}
KUBECTL=${KUBECTL:-}
if [[ -z "$KUBECTL" ]]; then
  for k in /usr/local/lib/sluice/kubernetes-client/usr/bin/kubectl /usr/bin/kubectl; do
    if [[ -x "$k" ]] && "$k" version --client 2>/dev/null | grep -q 'GitVersion:"v1\.20'; then KUBECTL=$k; break; fi
  done
fi
[[ -n "$KUBECTL" ]] || skip_or_fail "Debian's kubectl 1.20 (kubernetes-client; tools/install-deps.sh)"
python3 -c 'import yaml' 2>/dev/null || skip_or_fail "python3-yaml"

work=$(mktemp -d /tmp/slc-k8s-manifests.XXXXXX)
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf -- "$work"
}
trap cleanup EXIT
mkdir -p "$work/empty"
python3 "$here/k8s/fake_apiserver.py" --fixtures "$work/empty" --port-file "$work/port" 2>"$work/apiserver.log" &
server_pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
[[ -s "$work/port" ]] || { echo "FAIL: fake API server did not start"; exit 1; }
cat >"$work/kubeconfig" <<YAML
apiVersion: v1
kind: Config
current-context: t
clusters: [{name: t, cluster: {server: "http://127.0.0.1:$(cat "$work/port")"}}]
contexts: [{name: t, context: {cluster: t}}]
YAML

failures=0
if HOME="$work" "$KUBECTL" --kubeconfig "$work/kubeconfig" apply --dry-run=client --validate=false \
  -f "$root/deploy/kubernetes/" >"$work/apply.out" 2>&1 &&
  [[ $(grep -c "created (dry run)" "$work/apply.out") -eq $(grep -c '^kind:' "$root"/deploy/kubernetes/*.yaml | awk -F: '{s += $2} END {print s}') ]]; then
  echo "PASS: kubectl apply --dry-run=client takes every object of deploy/kubernetes/"
else
  echo "FAIL: kubectl apply --dry-run=client:"
  cat "$work/apply.out"
  failures=$((failures + 1))
fi
if python3 "$here/k8s/check_manifests.py" "$root"; then
  echo "PASS: schema-level checks of deploy/kubernetes/"
else
  echo "FAIL: schema-level checks of deploy/kubernetes/"
  failures=$((failures + 1))
fi
((failures == 0))

#!/usr/bin/env bash
# The Kubernetes API server as a config source, against the test suite's own
# list/watch server (k8s/fake_apiserver.py, over TLS with a bearer token):
#  1. Debian's kubectl (package kubernetes-client) speaks to it: discovery,
#     `get endpointslices -o yaml`, `get services -w` seeing a new Service
#     arrive, and the networking.istio.io kinds;
#  2. `sluiced --kubernetes --kubeconfig` compiles what it lists into a
#     snapshot; a VirtualService weight change becomes a new snapshot
#     version; an invalid object is refused naming it while the last good
#     snapshot serves; a bookmark moves the resourceVersion; a 410 Gone
#     (compaction) makes it list again and it recovers; watches that time out
#     resume from their resourceVersion without listing; server errors back
#     off and recover; SIGTERM stops it with watches open.
# sluiced runs with --no-xdp on loopback: what is checked is the config
# source and the snapshot path, which are the same for every plane.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${SLUICED:?set SLUICED to the sluiced binary}"
: "${SLUICECTL:?set SLUICECTL to the sluicectl binary}"

skip_or_fail() {
  if [[ "${CI:-}" == "true" ]]; then echo "FAIL: missing in CI: $*"; exit 1; fi
  echo "SKIP: missing: $*"
  exit 77
}
# Debian's kubectl: /usr/bin/kubectl from kubernetes-client, or where
# tools/install-deps.sh unpacks it when another package owns /usr/bin/kubectl.
KUBECTL=${KUBECTL:-}
if [[ -z "$KUBECTL" ]]; then
  for k in /usr/local/lib/sluice/kubernetes-client/usr/bin/kubectl /usr/bin/kubectl; do
    if [[ -x "$k" ]] && "$k" version --client 2>/dev/null | grep -q 'GitVersion:"v1\.20'; then KUBECTL=$k; break; fi
  done
fi
[[ -n "$KUBECTL" ]] || skip_or_fail "Debian's kubectl 1.20 (kubernetes-client; tools/install-deps.sh)"
command -v openssl >/dev/null || skip_or_fail "openssl"
command -v python3 >/dev/null || skip_or_fail "python3"

failures=0
check() {   # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then echo "PASS: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}

work=$(mktemp -d /tmp/slc-k8s.XXXXXX)
server_pid=""
agent_pid=""
cleanup() {
  [[ -n "$agent_pid" ]] && kill -KILL "$agent_pid" 2>/dev/null
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf -- "$work"
}
trap cleanup EXIT

# --- the API server: TLS with its own CA-less self-signed cert, a token ---
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$work/server.key" -out "$work/server.crt" 2>/dev/null || { echo "FAIL: openssl"; exit 1; }
token="sluice-test-$$-$RANDOM"
mkdir -p "$work/fixtures"
cp "$here"/k8s/fixtures/*.json "$work/fixtures/"

istio_object() {   # istio_object KIND NAME SPEC_JSON: an object as the API returns it
  printf '{"apiVersion":"networking.istio.io/v1beta1","kind":"%s","metadata":{"name":"%s","namespace":"default"},"spec":%s}' \
    "$1" "$2" "$3"
}
route() {   # route V1_WEIGHT V2_WEIGHT: the productpage VirtualService
  istio_object VirtualService productpage \
    "{\"hosts\":[\"productpage\"],\"http\":[{\"route\":[{\"destination\":{\"host\":\"productpage\",\"subset\":\"v1\"},\"weight\":$1},{\"destination\":{\"host\":\"productpage\",\"subset\":\"v2\"},\"weight\":$2}]}]}"
}
# productpage itself is the recorded Service, EndpointSlice and Pods (v1, v2);
# a ServiceEntry with WorkloadEntries beside it defines another service.
istio_object ServiceEntry details \
  '{"hosts":["details"],"addresses":["10.96.0.20"],"ports":[{"number":9080,"name":"http","protocol":"HTTP"}],"resolution":"STATIC","workloadSelector":{"labels":{"app":"details"}}}' \
  >"$work/fixtures/istio-serviceentry.json"
for i in 1 2; do
  istio_object WorkloadEntry "details-v1-$i" \
    "{\"address\":\"127.78.0.$i\",\"labels\":{\"app\":\"details\",\"version\":\"v1\"}}" \
    >"$work/fixtures/istio-workloadentry-$i.json"
done
istio_object DestinationRule productpage \
  '{"host":"productpage","subsets":[{"name":"v1","labels":{"version":"v1"}},{"name":"v2","labels":{"version":"v2"}}]}' \
  >"$work/fixtures/istio-destinationrule.json"
route 70 30 >"$work/fixtures/istio-virtualservice.json"

python3 "$here/k8s/fake_apiserver.py" --fixtures "$work/fixtures" --port-file "$work/port" --token "$token" \
  --tls-cert "$work/server.crt" --tls-key "$work/server.key" 2>"$work/apiserver.log" &
server_pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
[[ -s "$work/port" ]] || { echo "FAIL: fake API server did not start"; cat "$work/apiserver.log"; exit 1; }
port=$(cat "$work/port")
control() { curl -sf -m 5 -X POST "http://127.0.0.1:$port/_control/$1" --data-binary "${2:-{\}}" >/dev/null 2>&1 ||
  curl -sfk -m 5 -X POST "https://127.0.0.1:$port/_control/$1" --data-binary "${2:-{\}}" >/dev/null; }
stats() { curl -sfk -m 5 "https://127.0.0.1:$port/_control/stats"; }

cat >"$work/kubeconfig" <<YAML
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: fake
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $(base64 -w0 "$work/server.crt")
users:
- name: sluiced
  user:
    token: $token
contexts:
- name: test
  context: {cluster: fake, user: sluiced, namespace: default}
YAML
export HOME="$work"   # kubectl's discovery cache

# --- 1. kubectl against it ---
"$KUBECTL" --kubeconfig "$work/kubeconfig" get endpointslices -o yaml >"$work/eps.yaml" 2>&1
check "kubectl get endpointslices -o yaml returns the recorded EndpointSlice" \
  grep -q "name: productpage-7xk2p" "$work/eps.yaml"
check "  with its endpoints and port" \
  python3 -c "
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
s = d['items'][0]
assert d['kind'] == 'List' and s['kind'] == 'EndpointSlice' and s['addressType'] == 'IPv4'
assert [e['addresses'][0] for e in s['endpoints']] == ['10.244.1.5', '10.244.2.7'], s
assert s['ports'][0]['port'] == 9080
" "$work/eps.yaml"

timeout 8 "$KUBECTL" --kubeconfig "$work/kubeconfig" get services -w >"$work/watch.out" 2>&1 &
watch_pid=$!
for _ in $(seq 50); do grep -q '^reviews' "$work/watch.out" && break; sleep 0.1; done
control apply '{"apiVersion":"v1","kind":"Service","metadata":{"name":"ratings","namespace":"default"},"spec":{"clusterIP":"10.96.0.12","ports":[{"port":9080,"protocol":"TCP"}]}}'
for _ in $(seq 50); do grep -q "^ratings" "$work/watch.out" 2>/dev/null && break; sleep 0.1; done
wait "$watch_pid"
check "kubectl get services -w lists productpage and reviews, then sees ratings arrive" \
  python3 -c "
import sys
names = [l.split()[0] for l in open(sys.argv[1]) if l.strip()]
assert names == ['NAME', 'productpage', 'reviews', 'ratings'], names
" "$work/watch.out"
check "kubectl's watch resumed from the list's resourceVersion" \
  grep -q "GET /api/v1/namespaces/default/services?resourceVersion=[0-9]*&watch=true" "$work/apiserver.log"

"$KUBECTL" --kubeconfig "$work/kubeconfig" get virtualservices.networking.istio.io productpage -o json \
  >"$work/vs.json" 2>&1
check "kubectl get virtualservices (the Istio CRD) by name" \
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['spec']['http'][0]['route'][0]['weight'] == 70" \
  "$work/vs.json"
check "a wrong token is refused (401)" \
  bash -c "! '$KUBECTL' --kubeconfig '$work/kubeconfig' --token wrong get services >/dev/null 2>&1"

# --- 2. sluiced against it ---
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
admin="127.0.0.1:$(free_port)"
"$SLUICED" --kubernetes --kubeconfig "$work/kubeconfig" --no-xdp --admin "$admin" \
  --l7-listen "127.0.0.1:$(free_port)" --l7-listen6 '' --workers 1 --debounce-ms 50 --kube-watch-timeout 3 \
  >"$work/sluiced.log" 2>&1 &
agent_pid=$!
ctl() { "$SLUICECTL" "$@" --admin "$admin"; }
status_json() { curl -s -m 2 "http://$admin/status"; }
jq_py() { python3 -c "import json,sys; j=json.loads(sys.argv[1]); print($2)" "$1"; }
wait_for() {   # wait_for SECONDS PYTHON_EXPR_ON_STATUS (j)
  local s deadline=$((SECONDS + $1))
  while ((SECONDS <= deadline)); do
    s=$(status_json)
    [[ -n "$s" ]] && [[ "$(jq_py "$s" "$2" 2>/dev/null)" == "True" ]] && return 0
    sleep 0.1
  done
  echo "  (status: $(status_json | head -c 3000))"
  return 1
}
v1_share() { ctl routes | awk '/productpage/ { for (i = 1; i <= NF; i++) if ($i ~ /^productpage(\.default\.svc\.cluster\.local)?\/v1$/) print $(i + 1) }' | head -1; }

check "sluiced becomes ready once every resource has been listed" \
  wait_for 15 "j['version'] > 0 and j['kubernetes']['synced']"
first=$(status_json)
v0=$(jq_py "$first" "j['version']")
check "the first snapshot routes productpage v1 70%" test "$(v1_share)" == "70.0%"
check "the snapshot's origin is kubernetes in /status" test "$(jq_py "$first" "j['origin']")" == kubernetes
check "  in sluicectl status" bash -c "ctl_out=\$('$SLUICECTL' status --admin '$admin'); echo \"\$ctl_out\" | grep -Eq '^version +[0-9]+ \(kubernetes\)'"
check "  and in the log" grep -q 'applied from kubernetes' "$work/sluiced.log"
check "status reports each resource with its resourceVersion (sluicectl status)" \
  bash -c "ctl_out=\$('$SLUICECTL' status --admin '$admin'); echo \"\$ctl_out\" | grep -q 'kubernetes  https://127.0.0.1:$port' &&
           echo \"\$ctl_out\" | grep -Eq 'networking.istio.io/v1beta1/virtualservices +watching +rv [0-9]+ +1 objects'"
check "Services, EndpointSlices and Pods are listed and held (pods trimmed)" \
  wait_for 5 "[ (r['resource'], r['objects']) for r in j['kubernetes']['resources'][:3] ] == [('v1/services', 3), ('discovery.k8s.io/v1/endpointslices', 1), ('v1/pods', 2)]"

control apply "$(route 40 60)"
check "a VirtualService weight change becomes a new snapshot version" wait_for 10 "j['version'] > $v0"
check "  which routes v1 40%" test "$(v1_share)" == "40.0%"
v1=$(jq_py "$(status_json)" "j['version']")

bad=$(route 40 60 | sed 's/"weight":40/"weight":"forty"/')
control apply "$bad"
check "an invalid VirtualService is refused, naming the object" \
  wait_for 10 "j['last_error'] is not None and any('k8s:networking.istio.io/v1beta1/VirtualService/default/productpage' in m for m in j['last_error']['messages'])"
check "  and the last good snapshot keeps serving" \
  bash -c "[[ \$(python3 -c \"import json,sys; print(json.loads(sys.argv[1])['version'])\" \"\$(curl -s http://$admin/status)\") == $v1 ]]"
check "  with its weights" test "$(v1_share)" == "40.0%"
check "  and /ready still 200" curl -sf -m 5 -o /dev/null "http://$admin/ready"

control apply "$(route 20 80)"
check "a corrected object applies again" wait_for 10 "j['version'] > $v1 and j['last_error'] is None"
check "  routing v1 20%" test "$(v1_share)" == "20.0%"

control bookmark
server_rv=$(stats | python3 -c "import json,sys; print(json.load(sys.stdin)['resourceVersion'])")
check "a bookmark moves every watched resource to the server's resourceVersion" \
  wait_for 5 "all(r['resource_version'] == '$server_rv' for r in j['kubernetes']['resources'])"

lists_before=$(stats | python3 -c "import json,sys; print(json.load(sys.stdin)['lists'].get('virtualservices', 0))")
v2=$(jq_py "$(status_json)" "j['version']")
control expire
control apply "$(route 90 10)"
check "410 Gone: the watches end with ERROR 410 and every resource is listed again" \
  wait_for 15 "all(r['expired'] >= 1 and r['lists'] >= 2 and r['synced'] for r in j['kubernetes']['resources'])"
check "  and the change made meanwhile is served" wait_for 10 "j['version'] > $v2"
check "  routing v1 90%" test "$(v1_share)" == "90.0%"
check "  the server saw the relist" \
  test "$(stats | python3 -c "import json,sys; print(json.load(sys.stdin)['lists'].get('virtualservices', 0))")" -gt "$lists_before"

# Watches ask for timeoutSeconds=3: after a few, each resumed from a version
# it held (no empty resourceVersion, no list in between). Waits (at most
# 12 s) for four watches of virtualservices in all: how many came before
# depends on how fast the steps above ran.
for _ in $(seq 1 120); do
  n=$(stats | python3 -c "import json,sys; print(len(json.load(sys.stdin)['watch_versions'].get('virtualservices', [])))")
  [[ ${n:-0} -ge 4 ]] && break
  sleep 0.1
done
check "watches that time out resume from their resourceVersion without a list" \
  python3 -c "
import json, sys
s = json.loads(sys.argv[1])
w = s['watch_versions']['virtualservices']
assert len(w) >= 4 and all(v for v in w), w
assert s['lists']['virtualservices'] == 2, s['lists']
" "$(stats)" || { stats >&2; false; }

v3=$(jq_py "$(status_json)" "j['version']")
control fail '{"count": 6}'
control expire
control apply "$(route 60 40)"
check "server errors (500) are retried with backoff and the source recovers" \
  wait_for 20 "j['version'] > $v3 and j['kubernetes']['synced']"
check "  the last error is shown in status" \
  wait_for 1 "any(r['last_error'] and 'injected failure' in r['last_error']['message'] for r in j['kubernetes']['resources'])"
check "  routing v1 60%" test "$(v1_share)" == "60.0%"

kill -TERM "$agent_pid"
stopped=false
for _ in $(seq 100); do kill -0 "$agent_pid" 2>/dev/null || { stopped=true; break; }; sleep 0.1; done
check "SIGTERM stops sluiced with its watches open (within 10 s)" $stopped
$stopped && { wait "$agent_pid" 2>/dev/null; agent_pid=""; }

if ((failures > 0)); then
  echo "--- sluiced log (tail) ---"
  tail -40 "$work/sluiced.log"
  echo "--- API server log (tail) ---"
  tail -20 "$work/apiserver.log"
  exit 1
fi
exit 0

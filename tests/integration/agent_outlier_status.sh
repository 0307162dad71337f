#!/usr/bin/env bash
# What an operator sees of outlier detection: a backend killed under L7
# traffic is ejected by the proxy's shared detector, and /clusters and
# `sluicectl clusters` report it as failed_outlier_check (Envoy's term) while
# the rest stay healthy; clients see no error (retries on).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

agent_setup outlier
cat >"$AGENT_WORK/config/routing.yaml" <<'YAML'
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - name: primary
    retries: {attempts: 3, retryOn: "5xx,connect-failure,reset,gateway-error"}
    route:
    - destination: {host: productpage, subset: v1}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: productpage, namespace: default}
spec:
  host: productpage
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
agent_start
vip=10.96.0.10

health() {   # health JSON PORT SUBSET ENDPOINT
  agent_json "$1" "[e['health'] for c in j if c['port'] == $2 for s in c['subsets'] if s['name'] == '$3' for e in s['endpoints'] if e['name'] == '$4'][0]"
}
st=$(agent_curl "http://$AGENT_ADMIN/clusters")
agent_check "before: productpage-v1-a healthy on 9080" test "$(health "$st" 9080 v1 productpage-v1-a)" = healthy
agent_check "9080's subsets run outlier detection, 9081's (L4) do not" test \
  "$(agent_json "$st" 'sorted(set((c["port"], s["outlier_detection"]) for c in j for s in c["subsets"]))')" = \
  "[(9080, True), (9081, False)]"

# Kill productpage-v1-a's backend (the one process in its namespace).
be1=$(topo_ns backend 1)
pids=$(ip netns pids "$be1")
agent_check "one backend process in $be1" test "$(wc -w <<<"$pids")" -eq 1
kill -KILL $pids
l7=$(agent_loadgen http --url "http://$vip:9080/" --count 200 --concurrency 4 --keepalive --timeout-s 30)
agent_check "200 requests after the kill, no client error (retries)" test \
  "$(agent_json "$l7" 'sum(j["errors"].values()) == 0 and sum(j["backends"].values()) == 200')" = True
agent_check "all answered by productpage-v1-b" test "$(agent_json "$l7" 'j["backends"].get("productpage-v1-b", 0)')" -eq 200

st=$(agent_curl "http://$AGENT_ADMIN/clusters")
agent_check "/clusters: productpage-v1-a failed_outlier_check" \
  test "$(health "$st" 9080 v1 productpage-v1-a)" = failed_outlier_check
agent_check "/clusters: productpage-v1-b healthy" test "$(health "$st" 9080 v1 productpage-v1-b)" = healthy
agent_check "/clusters: the L4 port reports no ejection" test "$(health "$st" 9081 v1 productpage-v1-a)" = healthy
table=$(agent_ctl clusters)
agent_check "sluicectl clusters shows the ejection in its HEALTH column" \
  grep -qE "^productpage +9080 +l7 +v1 .*productpage-v1-a .* failed_outlier_check$" <<<"$table"
agent_check "ejection counted in istio-style stats" test \
  "$(agent_curl "http://$AGENT_ADMIN/stats/prometheus" | awk '/^sluice_outlier_ejections_total/ && /productpage-v1-a/ {s += $NF} END {print s + 0}')" -ge 1
agent_finish

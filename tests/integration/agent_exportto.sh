#!/usr/bin/env bash
# exportTo per client namespace (docs/config-reference.md, "Namespaces and
# exportTo"): productpage lives in namespace `default`; the client namespace
# of the topology has three addresses, and the configuration has Pods
# naming two of them:
#   10.200.1.2  Pod team-a/client-a   team-a's own VirtualService (exportTo .) sends everything to v2,
#                                      a subset of team-a's own DestinationRule (RANDOM), which
#                                      `sluicectl clusters` lists as "v2 (team-a/productpage)"
#   10.200.1.3  Pod team-b/client-b   no VirtualService is exported to team-b: the whole service (v1 and v2)
#   10.200.1.4  no Pod                 unknown: default's view, whose VirtualService (exportTo .) sends all to v1
# Each client reaches the same VIP on port 9080 (the L7 plane, the proxy
# picks the view) and 9081/tcp (the L4 plane: XDP picks the view per new
# connection from its source address, docs/bpf-datapath.md "Client views"),
# and gets the same backends on both.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

agent_setup exportto
client=$(topo_ns client)
topo_exec "$client" ip addr add 10.200.1.3/24 dev eth0 || { echo "FAIL: address 10.200.1.3"; exit 1; }
topo_exec "$client" ip addr add 10.200.1.4/24 dev eth0 || { echo "FAIL: address 10.200.1.4"; exit 1; }

cat >"$AGENT_WORK/config/views.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: client-a, namespace: team-a}
spec: {containers: [{name: c}]}
status: {phase: Running, podIP: 10.200.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: client-b, namespace: team-b}
spec: {containers: [{name: c}]}
status: {phase: Running, podIP: 10.200.1.3}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: productpage, namespace: default}
spec:
  host: productpage
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  exportTo: [.]
  http:
  - route: [{destination: {host: productpage, subset: v1}}]
  tcp:
  - route: [{destination: {host: productpage, subset: v1}}]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: productpage-for-a, namespace: team-a}
spec:
  hosts: [productpage.default.svc.cluster.local]
  exportTo: [.]
  http:
  - route: [{destination: {host: productpage.default.svc.cluster.local, subset: v2}}]
  tcp:
  - route: [{destination: {host: productpage.default.svc.cluster.local, subset: v2}}]
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: productpage, namespace: team-a}
spec:
  host: productpage.default.svc.cluster.local
  exportTo: [.]
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets:
  - {name: v2, labels: {version: v2}}
YAML

agent_check "sluicectl validate accepts the views" "$SLUICECTL" validate "$AGENT_WORK/config"
agent_check "explain shows team-a's view" bash -c \
  "'$SLUICECTL' explain '$AGENT_WORK/config' | grep -q 'clients of namespace team-a: VirtualService team-a/productpage-for-a'"
agent_start

tally() {   # tally SOURCE: "name=count ..." sorted, of 40 keep-alive requests from SOURCE
  local out
  out=$(agent_loadgen http --url "http://10.96.0.10:9080/" --source "$1" --count 40 --concurrency 2 --keepalive \
    --timeout-s 30)
  agent_json "$out" '" ".join("%s=%d" % kv for kv in sorted((j.get("backends") or {}).items()))'
}
tally_l4() {   # tally_l4 SOURCE: the same, of 40 TCP connections to 9081 from SOURCE
  local out
  out=$(agent_loadgen tcp --connect 10.96.0.10:9081 --source "$1" --count 40 --concurrency 2 --timeout-s 30)
  agent_json "$out" '" ".join("%s=%d" % kv for kv in sorted((j.get("backends") or {}).items()))'
}
a=$(tally 10.200.1.2); b=$(tally 10.200.1.3); unknown=$(tally 10.200.1.4)
echo "team-a: $a"; echo "team-b: $b"; echo "unknown: $unknown"
a4=$(tally_l4 10.200.1.2); b4=$(tally_l4 10.200.1.3); unknown4=$(tally_l4 10.200.1.4)
echo "L4 team-a: $a4"; echo "L4 team-b: $b4"; echo "L4 unknown: $unknown4"

# names_are TALLY NAME...: exactly these backends answered, 40 answers in all.
names_are() {
  local t=$1
  shift
  python3 -c 'import sys; t = dict(kv.split("=") for kv in sys.argv[1].split())
sys.exit(0 if sorted(t) == sorted(sys.argv[2:]) and sum(map(int, t.values())) == 40 else 1)' "$t" "$@"
}
agent_check "team-a's client: only v2 (its own VirtualService)" \
  names_are "$a" productpage-v2-a productpage-v2-b
agent_check "team-b's client: the whole service (no VirtualService exported to team-b), all four seen" \
  names_are "$b" productpage-v1-a productpage-v1-b productpage-v2-a productpage-v2-b
agent_check "an unknown client: default's view, only v1" \
  names_are "$unknown" productpage-v1-a productpage-v1-b
agent_check "L4: team-a's client: only v2" names_are "$a4" productpage-v2-a productpage-v2-b
agent_check "L4: team-b's client: the whole service, all four seen" \
  names_are "$b4" productpage-v1-a productpage-v1-b productpage-v2-a productpage-v2-b
agent_check "L4: an unknown client: default's view, only v1" names_are "$unknown4" productpage-v1-a productpage-v1-b
# The 120 connections were XDP's (its per-backend new-flow counters), not the kernel's.
agent_check "the 120 L4 connections were steered by XDP" python3 -c '
import json, sys
j = json.loads(sys.argv[1])
sys.exit(0 if sum(e.get("xdp_new_flows", 0) for c in j if c["port"] == 9081
                  for s in c["subsets"] if s["name"] and "destination_rule" not in s
                  for e in s["endpoints"]) == 120 else 1)' "$(agent_ctl clusters --json 2>&1)"
agent_check "clusters: team-a's own DestinationRule's v2 is listed with its rule" python3 -c '
import json, sys
j = json.loads(sys.argv[1])
mine = [s for c in j if c["port"] == 9081 for s in c["subsets"] if s.get("destination_rule") == "team-a/productpage"]
sys.exit(0 if [(s["name"], s["policy"], sorted(e["name"] for e in s["endpoints"])) for s in mine if s["name"]] ==
         [("v2", "RANDOM", ["productpage-v2-a", "productpage-v2-b"])] else 1)' "$(agent_ctl clusters --json 2>&1)"
agent_check "sluicectl clusters names it v2 (team-a/productpage)" bash -c \
  "nsenter --net=/run/netns/$(topo_ns node) '$SLUICECTL' clusters --admin '$AGENT_ADMIN' --admin-socket '$AGENT_SOCKET' | grep -q 'v2 (team-a/productpage)'"
routes=$(agent_ctl routes 2>&1)
echo "$routes" | grep -E ':9081' || true
agent_check "sluicectl routes: team-a's view of 9081 goes to v2 only, default's to v1" bash -c "
  grep -qE '^productpage \\[team-a\\] +10.96.0.10:9081 +L4 .*productpage/v2 100.0%' <<<\"\$1\" &&
  grep -qE '^productpage +10.96.0.10:9081 +L4 .*productpage/v1 100.0%' <<<\"\$1\"" _ "$routes"
agent_check "sluicectl routes --json: team-a's rows carry its namespace" python3 -c '
import json, sys
j = json.loads(sys.argv[1])
sys.exit(0 if any(r["port"] == 9081 and r["client_namespaces"] == ["team-a"] for r in j) and
         any(r["port"] == 9081 and r["client_namespaces"] is None for r in j) else 1)' "$(agent_ctl routes --json 2>&1)"

# A weight override (docs/config-reference.md, "Runtime weight overrides")
# follows default's VirtualService: the unknown client (default's view) goes
# to v2 only; team-a (a VirtualService of its own) and team-b (no
# VirtualService exported to it) keep the files' routes, and both tools
# name them.
out=$(agent_ctl weights productpage v1=0 v2=100 2>&1); rc=$?
echo "$out"
contains() { [[ $1 == *"$2"* ]]; }   # contains TEXT NEEDLE
agent_check "weights v1=0 v2=100: exit 0 ($rc)" test "$rc" -eq 0
agent_check "weights names team-a as left alone" contains "$out" \
  "not for clients of namespace team-a (VirtualService team-a/productpage-for-a): they keep the files' weights"
agent_check "weights names team-b as left alone" contains "$out" \
  "not for clients of namespace team-b (no VirtualService): they keep the files' weights"
agent_check "status lists them under the override" contains "$(agent_ctl status 2>&1)" \
  "            not for clients of namespace team-a (VirtualService team-a/productpage-for-a)"
a=$(tally 10.200.1.2); b=$(tally 10.200.1.3); unknown=$(tally 10.200.1.4)
a4=$(tally_l4 10.200.1.2); b4=$(tally_l4 10.200.1.3); unknown4=$(tally_l4 10.200.1.4)
echo "after the override: team-a $a / L4 $a4; team-b $b / L4 $b4; unknown $unknown / L4 $unknown4"
agent_check "override: an unknown client follows it, only v2" names_are "$unknown" productpage-v2-a productpage-v2-b
agent_check "override: L4: an unknown client follows it, only v2" names_are "$unknown4" productpage-v2-a productpage-v2-b
agent_check "override: team-b's client keeps the whole service, all four seen" \
  names_are "$b" productpage-v1-a productpage-v1-b productpage-v2-a productpage-v2-b
agent_check "override: L4: team-b's client keeps the whole service, all four seen" \
  names_are "$b4" productpage-v1-a productpage-v1-b productpage-v2-a productpage-v2-b
agent_check "override: team-a's client keeps its own VirtualService, only v2" names_are "$a" productpage-v2-a productpage-v2-b
agent_check "override: L4: team-a's client keeps its own VirtualService, only v2" names_are "$a4" productpage-v2-a productpage-v2-b
agent_finish

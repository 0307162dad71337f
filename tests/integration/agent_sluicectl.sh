#!/usr/bin/env bash
# sluicectl against a running sluiced: status, routes, clusters, stats and
# weights, in human tables and --json, their exit codes, and the errors a
# user sees for a bad weight, an unknown service or subset, an agent that is
# not there, and a refused config change.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

agent_setup ctl
agent_write_routing "name: primary" v1 70 30
agent_start
vip=10.96.0.10
l7=$(agent_loadgen http --url "http://$vip:9080/" --count 100 --concurrency 2 --keepalive --timeout-s 30)
l4=$(agent_loadgen tcp --connect "$vip:9081" --count 50 --concurrency 5 --timeout-s 30)
agent_check "traffic on both planes" test "$(agent_json "$l7" 'sum(j["backends"].values())')" -eq 100 \
  -a "$(agent_json "$l4" 'sum(j["backends"].values())')" -eq 50

ctl_out() { agent_ctl "$@" 2>&1; }
json_ok() {   # json_ok JSON PYTHON_CONDITION (j is the parsed JSON); prints the JSON when false
  python3 -c "import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if ($2) else 1)" "$1" || { echo "$1" | head -60; return 1; }
}
has_line() { grep -q -- "$2" <<<"$1" || { echo "$1" | head -30; return 1; }; }   # has_line OUTPUT REGEX
exits_with() {   # exits_with RC WANT_RC OUTPUT NEEDLE: the exit code, and NEEDLE in OUTPUT
  [[ $1 -eq $2 && $3 == *"$4"* ]]
}

# status
st=$(ctl_out status --json)
agent_check "status --json: a version, no override, no error, both planes" json_ok "$st" \
  'j["version"] >= 1 and j["overrides"] == {} and j["last_error"] is None and j["planes"]["xdp"] and j["planes"]["l7"]'
agent_check "status: human table says no override" has_line "$(ctl_out status)" '^overrides   none'

# routes
routes=$(ctl_out routes --json)
agent_check "routes --json: 9080 on L7 with route 'primary' 70/30, 9081 on L4 70/30" json_ok "$routes" '
  [ (r["plane"], [round(d["share"], 2) for d in (r["http_routes"][0]["route"] if r["plane"] == "L7" else r["l4"]["destinations"])])
    for r in sorted(j, key=lambda r: r["port"]) if r["service"] == "productpage"
  ] == [("L7", [0.7, 0.3]), ("L4", [0.7, 0.3])] and
  [r for r in j if r["port"] == 9080][0]["http_routes"][0]["name"] == "primary"'
agent_check "routes: human table shows primary -> v1 70.0% v2 30.0%" has_line "$(ctl_out routes)" 'productpage .*10.96.0.10:9080 .*L7 .*primary .*productpage/v1 70.0%  productpage/v2 30.0%'

# clusters
clusters=$(ctl_out clusters --json)
# Each port lists the whole service (subset "") and the DestinationRule's subsets.
agent_check "clusters --json: both ports, v1 and v2 with their two endpoints each" json_ok "$clusters" '
  sorted((c["port"], s["name"], sorted(e["address"] for e in s["endpoints"])) for c in j for s in c["subsets"] if s["name"]) == [
    (9080, "v1", ["10.200.11.2:9080", "10.200.12.2:9080"]), (9080, "v2", ["10.200.13.2:9080", "10.200.14.2:9080"]),
    (9081, "v1", ["10.200.11.2:9081", "10.200.12.2:9081"]), (9081, "v2", ["10.200.13.2:9081", "10.200.14.2:9081"])]'
agent_check "clusters --json: the L4 endpoints count the flows XDP opened (50 in all)" json_ok "$clusters" '
  sum(e.get("xdp_new_flows", 0) for c in j if c["port"] == 9081 for s in c["subsets"] if s["name"] for e in s["endpoints"]) == 50'
agent_check "clusters: human table lists productpage-v2-b" has_line "$(ctl_out clusters)" 'productpage-v2-b *10.200.14.2:9080'

# stats
stats=$(ctl_out stats --json)
agent_check "stats --json: istio_requests_total counts the 100 requests as 200s" json_ok "$stats" '
  sum(s["value"] for s in j if s["name"] == "istio_requests_total" and s["labels"].get("response_code") == "200") == 100'
agent_check "stats --json: istio_tcp_connections_opened_total counts the 50 connections" json_ok "$stats" '
  sum(s["value"] for s in j if s["name"] == "istio_tcp_connections_opened_total") == 50'
agent_check "stats: human table hides zero samples unless --all" test \
  "$(ctl_out stats | wc -l)" -lt "$(ctl_out stats --all | wc -l)"

# weights
out=$(ctl_out weights productpage v1=10 v2=90); rc=$?
agent_check "weights v1=10 v2=90: exit 0, says what it applied ($out)" \
  exits_with "$rc" 0 "$out" "productpage: v1=10 v2=90 applied as version "
agent_check "status --json shows the override" json_ok "$(ctl_out status --json)" \
  'j["overrides"] == {"productpage": {"v1": 10, "v2": 90}}'
agent_check "status: human table shows the override" has_line "$(ctl_out status)" '^override    productpage: v1=10 v2=90 (until the files change its routes)'
agent_check "routes follow the override" json_ok "$(ctl_out routes --json)" \
  '[round(d["share"], 2) for r in j if r["port"] == 9080 for d in r["http_routes"][0]["route"]] == [0.1, 0.9]'

out=$(ctl_out weights productpage v3=5); rc=$?
agent_check "weights with an unknown subset: exit 1, names it ($out)" exits_with "$rc" 1 "$out" "unknown subset 'v3'"
out=$(ctl_out weights nosuchservice v1=5); rc=$?
agent_check "weights for an unknown service: exit 1, names it ($out)" exits_with "$rc" 1 "$out" "unknown host 'nosuchservice'"
out=$(ctl_out weights productpage v1=abc); rc=$?
agent_check "weights with a non-number: usage error (2) naming the argument ($out)" exits_with "$rc" 2 "$out" "'v1=abc'"
agent_check "a refused override changes nothing" json_ok "$(ctl_out status --json)" \
  'j["overrides"] == {"productpage": {"v1": 10, "v2": 90}}'

# Reads go over the Unix socket when only --admin-socket is given: run from
# the root namespace, where 127.0.0.1:15000 is not the agent (socket paths
# are not per namespace).
out=$("$SLUICECTL" status --json --admin-socket "$AGENT_SOCKET" 2>&1); rc=$?
agent_check "status --admin-socket alone reads over the socket ($rc)" json_ok "$out" \
  'j["overrides"] == {"productpage": {"v1": 10, "v2": 90}}'
out=$("$SLUICECTL" top --once --json --admin-socket "$AGENT_SOCKET" 2>&1); rc=$?
agent_check "top --admin-socket alone reads over the socket ($rc)" json_ok "$out" '"status" in j'
out=$("$SLUICECTL" stats --admin-socket "$AGENT_WORK/no-such.sock" 2>&1); rc=$?
agent_check "stats against a socket nobody serves: exit 2 and a hint naming it ($out)" \
  exits_with "$rc" 2 "$out" "is sluiced running with --admin-socket $AGENT_WORK/no-such.sock?"
agent_check "a socket that is not there is not blamed on root ($out)" test "${out/needs root/}" == "$out"

# an agent that is not there
out=$(nsenter --net="/run/netns/$(topo_ns node)" "$SLUICECTL" status --admin 127.0.0.1:1 2>&1); rc=$?
agent_check "status against no agent: exit 2 and a hint naming the address ($out)" \
  exits_with "$rc" 2 "$out" "is sluiced running with --admin 127.0.0.1:1?"

# a refused file change
before=$(agent_json "$(ctl_out status --json)" 'j["version"]')
agent_write_routing "name: primary" v3 70 30
for _ in $(seq 250); do
  [[ $(agent_json "$(ctl_out status --json)" 'j["last_error"] is not None') == True ]] && break
  sleep 0.02
done
out=$(ctl_out status); rc=$?
agent_check "status after an invalid file: exit 1, REFUSED, version $before still serving" \
  exits_with "$rc" 1 "$out" "(still serving version $before):"
agent_check "and it names file:line:col" exits_with "$rc" 1 "$out" "routing.yaml:9:48: error: unknown subset 'v3'"
agent_check "and the override still stands" json_ok "$(ctl_out status --json)" \
  'j["overrides"] == {"productpage": {"v1": 10, "v2": 90}}'
agent_finish

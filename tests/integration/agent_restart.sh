#!/usr/bin/env bash
# sluiced killed with SIGKILL under L4 load and started again: the XDP
# program and its maps stay pinned while no agent runs, so 200 established
# connections keep their backends (no reset, no backend change), new
# connections keep being served, and the new agent reports the same
# conntrack entries the old one did.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

agent_setup restart
agent_write_routing "name: primary" v1 70 30
agent_start
client=$(topo_ns client)
vip=10.96.0.10

# 200 long-lived connections, pinged every 200 ms for 12 s.
agent_loadgen hold --connect "$vip:9081" --connections 200 --duration-s 12 --interval-ms 200 --timeout-s 40 \
  >"$AGENT_WORK/hold.json" &
hold_pid=$!
sleep 3
flows_of() { python3 -c "
import json,sys
print('\n'.join(sorted('%s %s %s' % (f['client'], f['vip'], f['backend']) for f in json.loads(sys.argv[1]) if f['vip'].endswith(':9081'))))" "$1"; }
before=$(flows_of "$(agent_curl "http://$AGENT_ADMIN/conntrack")")
agent_stop KILL
agent_check "XDP program and maps stay pinned after SIGKILL" test -e "$AGENT_PIN"
# While no agent runs, new connections are still steered by the pinned program.
during=$(agent_loadgen tcp --connect "$vip:9081" --count 200 --concurrency 10 --timeout-s 20)
agent_check "new connections are served while the agent is down" \
  test "$(agent_json "$during" 'sum(j["backends"].values())')" -eq 200
agent_start
after=$(flows_of "$(agent_curl "http://$AGENT_ADMIN/conntrack")")
missing=$(comm -23 <(echo "$before") <(echo "$after") | wc -l)
agent_check "the restarted agent reports the same conntrack entries ($(echo "$before" | grep -c .) flows held, $missing missing)" \
  test "$(echo "$before" | grep -c .)" -ge 200 -a "$missing" -eq 0
agent_check "the restarted agent re-used the pinned maps" grep -q "re-using pinned maps" "$AGENT_WORK/sluiced.log"
wait "$hold_pid"
hold=$(cat "$AGENT_WORK/hold.json")
echo "hold: $(agent_json "$hold" 'j["summary"]')"
agent_check "200 held connections: no reset, no echo timeout, no backend change" python3 -c "
import json,sys
j=json.loads(sys.argv[1]); s=j['summary']
connected=sum(1 for c in j['connections'] if c['connected'])
sys.exit(0 if s['resets']==0 and s['echo_timeouts']==0 and s['changed_backend']==0 and connected==200 else 1)" "$hold"
agent_finish

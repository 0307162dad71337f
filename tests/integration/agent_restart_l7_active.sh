#!/usr/bin/env bash
# sluiced killed with SIGKILL while L7 requests are in flight: the pinned
# per-backend l7_active counts (what LEAST_REQUEST reads in both planes)
# were added to by the old agent and never taken back. The next agent is
# their only writer, so it must start them from 0, not from what the dead
# one left.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

agent_setup l7active --delay-ms 30000
agent_write_routing "name: primary" v1 50 50
agent_start
client=$(topo_ns client)
l7_active_sum() {
  agent_curl "http://$AGENT_ADMIN/stats/prometheus" |
    awk '/^sluice_backend_active_l7_requests/ {s += $2} END {print s + 0}'
}

# 8 requests held open by the backends' 30 s delay (curl gives up after 20 s).
curls=()
for i in $(seq 8); do
  topo_exec "$client" curl -s -o /dev/null -m 20 "http://10.96.0.10:9080/slow/$i" &
  curls+=($!)
done
in_flight=0
for _ in $(seq 100); do
  in_flight=$(l7_active_sum)
  [[ $in_flight -ge 8 ]] && break
  sleep 0.1
done
agent_check "8 requests in flight are counted in the pinned map ($in_flight)" test "$in_flight" -ge 8
agent_stop KILL
kill "${curls[@]}" 2>/dev/null
wait "${curls[@]}" 2>/dev/null
agent_start
after=$(l7_active_sum)
agent_check "the restarted agent reports 0 active L7 requests, not the dead agent's ($after)" test "$after" -eq 0
agent_check "the reset is logged" grep -q "active L7 requests left by a previous agent" "$AGENT_WORK/sluiced.log"
agent_finish

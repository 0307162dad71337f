#!/usr/bin/env bash
# SIGTERM under L7 load: requests already in flight complete (200), the
# responses tell keep-alive clients `Connection: close`, nobody sees a reset,
# and the agent exits by itself within its drain timeout, leaving XDP pinned
# (L4 keeps flowing after the agent is gone).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

agent_setup drain
agent_write_routing "name: primary" v1 50 50
agent_start --drain-timeout 10
client=$(topo_ns client)
vip=10.96.0.10

# 16 slow requests (4 s at the backend, so that on a loaded machine none has
# finished by the time all 16 are in flight and SIGTERM is sent), each on its
# own keep-alive connection.
curl_pids=()
for k in $(seq 16); do
  topo_exec "$client" curl -sS -m 20 -D "$AGENT_WORK/h$k.txt" -o /dev/null -w "%{http_code}\n" \
    "http://$vip:9080/slow?delay_ms=4000" >"$AGENT_WORK/c$k.txt" 2>&1 &
  curl_pids+=($!)
done
# SIGTERM only once all 16 are in flight inside the proxy (its active
# requests per backend, as published in the shared load map), so the test is
# about in-flight requests, not connections still in the accept queue.
in_flight() {
  python3 -c "
import json,sys
c=json.loads(sys.argv[1])
print(sum(e.get('l7_active_requests',0) for x in c if x['port']==9080 for s in x['subsets'] if s['name']=='' for e in s['endpoints']))" \
    "$(agent_curl "http://$AGENT_ADMIN/clusters")"
}
for t in $(seq 100); do [[ $(in_flight) -ge 16 ]] && break; sleep 0.05; done
agent_check "16 requests in flight before SIGTERM ($(in_flight))" test "$(in_flight)" -ge 16
kill -TERM "$AGENT_PID"
wait_agent() { local i; for i in $(seq 150); do kill -0 "$AGENT_PID" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
agent_check "sluiced exits by itself after draining" wait_agent
AGENT_PID=""
wait "${curl_pids[@]}"
ok=0 closes=0
for k in $(seq 16); do
  [[ $(cat "$AGENT_WORK/c$k.txt") == 200 ]] && ok=$((ok + 1))
  grep -qi '^connection: *close' "$AGENT_WORK/h$k.txt" && closes=$((closes + 1))
done
agent_check "16 in-flight requests completed with 200 ($ok)" test "$ok" -eq 16
agent_check "their responses carried Connection: close ($closes)" test "$closes" -eq 16
agent_check "drain log line present" grep -q "SIGTERM: draining" "$AGENT_WORK/sluiced.log"
l4=$(agent_loadgen tcp --connect "$vip:9081" --count 50 --concurrency 5 --timeout-s 20)
agent_check "L4 keeps flowing with the agent gone" test "$(agent_json "$l4" 'sum(j["backends"].values())')" -eq 50
[[ $agent_failures -gt 0 ]] && { for k in 1 2 3; do echo "c$k: $(cat "$AGENT_WORK/c$k.txt")"; cat "$AGENT_WORK/h$k.txt"; done; }
agent_finish

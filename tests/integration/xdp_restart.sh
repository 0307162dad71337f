#!/usr/bin/env bash
# The loader is killed (SIGKILL, no cleanup) and restarted while 100
# connections are held open: the programs stay attached through their pinned
# links and keep steering with the pinned maps, so established connections
# keep flowing (0 resets, 0 backend changes, every ping answered), new
# connections still work while it is away, and the restarted loader re-uses
# the pinned maps and links (reported in its status) and resumes re-applying.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=xdp_lib.sh
source "$here/xdp_lib.sh"

xdp_setup restart
xdp_write_config ROUND_ROBIN 70 30
xdp_start_harness
client=$(topo_ns client)

xdp_hold_start 100 100
sleep 1.5

kill -KILL "$XDP_HARNESS_PID"
wait "$XDP_HARNESS_PID" 2>/dev/null
XDP_HARNESS_PID=""
xdp_loadgen "$XDP_WORK/away.json" tcp --connect 10.96.0.10:9081 --count 500 --concurrency 16 --timeout-s 20
away=$(xdp_json "$XDP_WORK/away.json" 'sum(j["backends"].values())')
xdp_check "with the loader dead, 500 new connections are steered ($away answered)" test "$away" -eq 500
sleep 1.5

xdp_start_harness
read -r reused_maps reused_links < <(xdp_json "$XDP_WORK/status.json" \
  'str(j["reused_maps"]).lower() + " " + str(all(i["reused"] for i in j["interfaces"])).lower()')
xdp_check "restarted loader re-used the pinned maps" test "$reused_maps" = true
xdp_check "restarted loader re-used the pinned XDP links" test "$reused_links" = true
xdp_write_config ROUND_ROBIN 0 100
xdp_reapply
xdp_loadgen "$XDP_WORK/after.json" tcp --connect 10.96.0.10:9081 --count 100 --concurrency 8 --timeout-s 20
v2=$(xdp_json "$XDP_WORK/after.json" 'sum(n for b, n in j["backends"].items() if b.startswith("productpage-v2"))')
xdp_check "restarted loader applies new weights (100/100 new connections to v2)" test "$v2" -eq 100

sleep 1
read -r conns resets changed timeouts < <(xdp_hold_report)
echo "hold across the restart: connections=$conns resets=$resets changed_backend=$changed echo_timeouts=$timeouts"
xdp_check "100 connections held across the restart" test "$conns" -eq 100
xdp_check "no reset" test "$resets" -eq 0
xdp_check "no backend change" test "$changed" -eq 0
xdp_check "every ping answered" test "$timeouts" -eq 0
xdp_finish

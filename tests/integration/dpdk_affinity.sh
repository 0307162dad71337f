#!/usr/bin/env bash
# sluice-fwd keeps connection affinity across weight changes: 200 long-lived
# connections (pinging every 200 ms) stay on their backend, with no reset,
# while the v1/v2 split is changed 20 times through the pinned tables; after
# every change (once the forwarder reports the new generation live) 50 new
# connections follow the new weights exactly (100/0 and 0/100 alternate, so
# "follow" has no statistical slack).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=dpdk_lib.sh
source "$here/dpdk_lib.sh"

dpdk_setup affinity
xdp_write_config ROUND_ROBIN 50 50
dpdk_start_tables
dpdk_start_forwarder 200   # outlives the hold (xdp_hold_start: at most 180 s)
xdp_hold_start 200 200
sleep 2   # all 200 connected and pinging

followed=0
loop_start=$SECONDS
for change in $(seq 1 20); do
  if ((change % 2)); then w1=0 w2=100; else w1=100 w2=0; fi
  xdp_write_config ROUND_ROBIN $w1 $w2
  dpdk_reapply || break
  xdp_loadgen "$XDP_WORK/new.json" tcp --connect 10.96.0.10:9081 --count 50 --concurrency 10 --timeout-s 10
  read -r v1 v2 < <(xdp_subset_counts "$XDP_WORK/new.json")
  if [[ $w1 -eq 100 && $v1 -eq 50 ]] || [[ $w2 -eq 100 && $v2 -eq 50 ]]; then
    followed=$((followed + 1))
  else
    echo "change $change ($w1/$w2): new connections went v1=$v1 v2=$v2"
  fi
done
loop_s=$((SECONDS - loop_start))
sleep 1   # a few more pings after the last change
read -r conns resets changed timeouts < <(xdp_hold_report)
echo "hold ($loop_s s of changes): connections=$conns resets=$resets changed_backend=$changed echo_timeouts=$timeouts; new connections followed $followed/20 changes"
xdp_check "the 20 changes ($loop_s s) happened while the connections were held (< 170 s)" test "$loop_s" -lt 170
xdp_check "200 long-lived connections held" test "$conns" -eq 200
xdp_check "no long-lived connection was reset" test "$resets" -eq 0
xdp_check "no long-lived connection changed backend" test "$changed" -eq 0
xdp_check "no ping went unanswered" test "$timeouts" -eq 0
xdp_check "new connections followed all 20 weight changes" test "$followed" -eq 20
if ((xdp_failures > 0)); then
  echo "--- held connections that timed out or moved (first 3) ---"
  python3 -c '
import json, sys
j, _ = json.JSONDecoder().raw_decode(open(sys.argv[1]).read().lstrip())
print("\n".join(str(c) for c in [c for c in j["connections"] if c["echo_timeouts"] or len(c["backends_seen"]) > 1][:3]))' "$XDP_WORK/hold.json"
fi
dpdk_finish

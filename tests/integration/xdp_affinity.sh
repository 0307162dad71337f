#!/usr/bin/env bash
# Connection affinity across weight changes: 200 long-lived connections
# (pinging every 200 ms) stay on their backend, with no reset, while the
# v1/v2 split is changed 20 times; after every change 50 new connections
# follow the new weights exactly (the weights alternate 100/0 and 0/100, so
# "follow" has no statistical slack).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=xdp_lib.sh
source "$here/xdp_lib.sh"

xdp_setup affinity
xdp_write_config ROUND_ROBIN 50 50
xdp_start_harness
client=$(topo_ns client)

xdp_hold_start 200 200
sleep 2   # all 200 connected and pinging

followed=0
loop_start=$SECONDS
for change in $(seq 1 20); do
  if ((change % 2)); then w1=0 w2=100; else w1=100 w2=0; fi
  xdp_write_config ROUND_ROBIN $w1 $w2
  xdp_reapply || break
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
xdp_check "200 long-lived connections held" test "$conns" -eq 200
xdp_check "no long-lived connection was reset" test "$resets" -eq 0
xdp_check "no long-lived connection changed backend" test "$changed" -eq 0
xdp_check "no ping went unanswered" test "$timeouts" -eq 0
xdp_check "new connections followed all 20 weight changes" test "$followed" -eq 20
xdp_finish

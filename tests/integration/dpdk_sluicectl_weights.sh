#!/usr/bin/env bash
# One control plane drives the forwarder: sluiced owns the pinned tables,
# sluice-fwd reads them, and `sluicectl weights` (agent admin API -> both
# planes) moves new connections through the forwarder. The weights go
# 100/0 -> 0/100 -> 100/0, so every new connection has exactly one right
# subset: no statistical slack.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=dpdk_lib.sh
source "$here/dpdk_lib.sh"
: "${SLUICED:?set SLUICED to the sluiced binary}"
: "${SLUICECTL:?set SLUICECTL to the sluicectl binary}"

dpdk_setup weights
xdp_write_config ROUND_ROBIN 70 30
node=$(topo_ns node)
admin="127.0.0.1:$((20000 + $$ % 20000))"
nsenter --net="/run/netns/$node" "$SLUICED" --config-dir "$XDP_WORK/config" --pin-dir "$XDP_PIN" \
  --admin "$admin" --workers 1 >>"$XDP_WORK/sluiced.log" 2>&1 &
sluiced_pid=$!
topo_on_cleanup "kill -TERM $sluiced_pid 2>/dev/null; wait $sluiced_pid 2>/dev/null"
ready=0
for _ in $(seq 100); do
  nsenter --net="/run/netns/$node" curl -sf "http://$admin/ready" >/dev/null 2>&1 && { ready=1; break; }
  sleep 0.1
done
[[ $ready -eq 1 ]] || { echo "FAIL: sluiced not ready"; tail -20 "$XDP_WORK/sluiced.log"; exit 1; }
dpdk_start_forwarder 60

shift_and_count() {   # shift_and_count W1 W2: sluicectl weights, then 100 new connections
  local before now i
  before=$(dpdk_snapshots)
  nsenter --net="/run/netns/$node" "$SLUICECTL" weights productpage "v1=$1" "v2=$2" --admin "$admin" \
    >>"$XDP_WORK/sluicectl.log" 2>&1 || { echo "sluicectl weights failed:"; tail -5 "$XDP_WORK/sluicectl.log"; return 1; }
  for i in $(seq 300); do
    now=$(dpdk_snapshots)
    [[ -n "$now" && "$now" -gt "$before" ]] && break
    sleep 0.01
  done
  xdp_loadgen "$XDP_WORK/new.json" tcp --connect 10.96.0.10:9081 --count 100 --concurrency 10 --timeout-s 20
  xdp_json "$XDP_WORK/new.json" \
    '" ".join(str(sum(n for b, n in j["backends"].items() if b.startswith(p))) for p in ["productpage-v1","productpage-v2"])'
}

read -r v1 v2 < <(shift_and_count 100 0)
xdp_check "sluicectl weights v1=100 v2=0: 100 new connections through the forwarder to v1 (v1=$v1 v2=$v2)" \
  test "${v1:-0}" -eq 100
read -r v1 v2 < <(shift_and_count 0 100)
xdp_check "sluicectl weights v1=0 v2=100: 100 new connections to v2 (v1=$v1 v2=$v2)" test "${v2:-0}" -eq 100
read -r v1 v2 < <(shift_and_count 100 0)
xdp_check "back to v1=100: 100 new connections to v1 (v1=$v1 v2=$v2)" test "${v1:-0}" -eq 100
dpdk_finish

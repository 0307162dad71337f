#!/usr/bin/env bash
# One control plane drives the forwarder, and the agent reports it: sluiced
# owns the pinned tables, sluice-fwd reads them, `sluicectl weights` (agent
# admin API -> both planes) moves new connections through the forwarder, and
# the forwarder's counters come back through sluiced (--dpdk-stats) to
# `sluicectl stats` / `status` / `clusters`. The weights go 100/0 -> 0/100 ->
# 100/0, so every new connection has exactly one right subset and every
# counter has an exact expected value: no statistical slack.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=dpdk_lib.sh
source "$here/dpdk_lib.sh"
: "${SLUICED:?set SLUICED to the sluiced binary}"
: "${SLUICECTL:?set SLUICECTL to the sluicectl binary}"

dpdk_setup weights
xdp_write_config ROUND_ROBIN 70 30
node=$(topo_ns node)
dpdk_start_agent
admin=$DPDK_ADMIN
dpdk_start_forwarder 90

ctl() { nsenter --net="/run/netns/$node" timeout 20 "$SLUICECTL" "$@" --admin "$admin" --admin-socket "$XDP_WORK/admin.sock"; }

shift_and_count() {   # shift_and_count W1 W2: sluicectl weights, then 100 new connections; prints "v1 v2 followed"
  local before now i followed=0
  before=$(dpdk_snapshots)
  ctl weights productpage "v1=$1" "v2=$2" >>"$XDP_WORK/sluicectl.log" 2>&1 ||
    { echo "sluicectl weights failed:" >&2; tail -5 "$XDP_WORK/sluicectl.log" >&2; return 1; }
  for i in $(seq 300); do
    now=$(dpdk_snapshots)
    [[ -n "$now" && "$now" -gt "$before" ]] && { followed=1; break; }
    sleep 0.01
  done
  xdp_loadgen "$XDP_WORK/new.json" tcp --connect 10.96.0.10:9081 --count 100 --concurrency 10 --timeout-s 20
  xdp_json "$XDP_WORK/new.json" \
    '" ".join(str(sum(n for b, n in j["backends"].items() if b.startswith(p))) for p in ["productpage-v1","productpage-v2"])' |
    tr -d '\n'
  echo " $followed"
}

read -r v1 v2 followed < <(shift_and_count 100 0)
xdp_check "sluicectl weights v1=100 v2=0 reached the forwarder within 3 s" test "${followed:-0}" -eq 1
xdp_check "100 new connections through the forwarder to v1 (v1=$v1 v2=$v2)" test "${v1:-0}" -eq 100
read -r v1 v2 followed < <(shift_and_count 0 100)
xdp_check "sluicectl weights v1=0 v2=100 reached the forwarder within 3 s" test "${followed:-0}" -eq 1
xdp_check "100 new connections to v2 (v1=$v1 v2=$v2)" test "${v2:-0}" -eq 100
read -r v1 v2 followed < <(shift_and_count 100 0)
xdp_check "back to v1=100 reached the forwarder within 3 s" test "${followed:-0}" -eq 1
xdp_check "100 new connections to v1 (v1=$v1 v2=$v2)" test "${v1:-0}" -eq 100

# 20 long-lived connections through the forwarder: they are the only open
# flows, so the shared least-request map (sluicectl clusters: L4 active
# flows per endpoint) must show exactly 20, all on v1.
xdp_hold_start 20 500
sleep 3   # connected, and one more stats file write (every second)
ctl clusters --json >"$XDP_WORK/clusters.json" 2>>"$XDP_WORK/sluicectl.log"
read -r active_v1 active_v2 < <(xdp_json "$XDP_WORK/clusters.json" '
" ".join(str(sum(e.get("l4_active_flows", 0) for c in j if c["port"] == 9081 for s in c["subsets"] if s["name"] == v
                 for e in s["endpoints"])) for v in ["v1", "v2"])')
echo "clusters: L4 active flows v1=$active_v1 v2=$active_v2 (20 held through the forwarder)"
xdp_check "the forwarder's 20 open flows are in the shared least-request map, on v1 ($active_v1/$active_v2)" \
  test "$active_v1" -eq 20 -a "$active_v2" -eq 0

# Its counters through the agent: 220 connections opened to v1 (100 + 100 +
# 20 held), 100 to v2; the forwarder is up and reports its generation.
ctl stats --json >"$XDP_WORK/stats-ctl.json" 2>>"$XDP_WORK/sluicectl.log"
read -r up opened_v1 opened_v2 active < <(xdp_json "$XDP_WORK/stats-ctl.json" '
" ".join(str(int(sum(s["value"] for s in j if s["name"] == n and all(s["labels"].get(k) == v for k, v in l.items()))))
         for n, l in [("sluice_dpdk_up", {}),
                      ("sluice_dpdk_tcp_connections_opened_total", {"destination_version": "v1", "destination_port": "9081"}),
                      ("sluice_dpdk_tcp_connections_opened_total", {"destination_version": "v2", "destination_port": "9081"}),
                      ("sluice_dpdk_backend_active_flows", {})])')
echo "sluicectl stats: sluice_dpdk_up=$up opened v1=$opened_v1 v2=$opened_v2 active=$active"
xdp_check "sluicectl stats: sluice_dpdk_up 1" test "$up" -eq 1
xdp_check "sluicectl stats: 220 connections opened to v1 through the forwarder ($opened_v1)" test "$opened_v1" -eq 220
xdp_check "sluicectl stats: 100 connections opened to v2 through the forwarder ($opened_v2)" test "$opened_v2" -eq 100
xdp_check "sluicectl stats: the forwarder's own active-flow gauge says 20 ($active)" test "$active" -eq 20
ctl stats >"$XDP_WORK/stats-ctl.txt" 2>>"$XDP_WORK/sluicectl.log"
xdp_check "sluicectl stats (table) lists sluice_dpdk_* series" grep -q '^sluice_dpdk_tcp_connections_opened_total' \
  "$XDP_WORK/stats-ctl.txt"
ctl status >"$XDP_WORK/status.txt" 2>>"$XDP_WORK/sluicectl.log"
xdp_check "sluicectl status shows the dpdk forwarder plane" grep -q 'dpdk forwarder (table generation' \
  "$XDP_WORK/status.txt"
read -r conns resets changed timeouts < <(xdp_hold_report)
xdp_check "the 20 held connections stayed up ($conns held, $resets resets, $timeouts echo timeouts)" \
  test "$conns" -eq 20 -a "$resets" -eq 0 -a "$timeouts" -eq 0

# Stopped, the forwarder's file goes stale and the agent says it is down.
dpdk_stop_forwarder
sleep $((5 + 1))   # kForwarderStaleAfterSeconds + 1
up=$(nsenter --net="/run/netns/$node" curl -sf -m 20 "http://$admin/stats/prometheus" | awk '$1 == "sluice_dpdk_up" {print $2}')
xdp_check "after the forwarder stopped, sluice_dpdk_up is 0 (got '$up')" test "${up:-x}" = 0
if ((xdp_failures > 0)); then
  echo "--- sluiced log ---"
  tail -20 "$XDP_WORK/sluiced.log"
fi
dpdk_finish

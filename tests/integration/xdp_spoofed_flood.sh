#!/usr/bin/env bash
# Conntrack poisoning: a flood of spoofed TCP ACKs (random sources and
# ports, 100,000 segments, bounded at 20 s) at the VIP while 50 established
# connections ping their backends. With a conntrack table of 4,096 flows,
# each spoofed ACK used to create a forward and a reverse entry, evicting
# the live flows; their next packet was re-steered by ROUND_ROBIN to another
# backend, which answered with a reset. Only a SYN creates TCP state now:
# every established flow must keep its backend with 0 resets, and the
# spoofed segments must leave the table as it was.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=xdp_lib.sh
source "$here/xdp_lib.sh"

xdp_setup flood
xdp_write_config ROUND_ROBIN 50 50
xdp_start_harness --conntrack-flows 4096
client=$(topo_ns client)

xdp_hold_start 50 200
sleep 2   # all 50 connected and pinging
sent=$(topo_exec "$client" timeout 60 python3 "$here/spoofed_flood.py" --dst 10.96.0.10 --dport 9081 \
  --count 100000 --seconds 20)
xdp_stats
flows=$(xdp_json "$XDP_WORK/stats.json" 'j["conntrack_flows"]')
miss=$(xdp_json "$XDP_WORK/stats.json" 'j["global"]["ct_midflow_miss"]')
sleep 1   # a few more pings after the flood
read -r conns resets changed timeouts < <(xdp_hold_report)
echo "flood: $sent spoofed ACKs sent, $miss dropped as mid-flow misses, $flows conntrack entries;" \
  "hold: connections=$conns resets=$resets changed_backend=$changed echo_timeouts=$timeouts"
xdp_check "the flood was sent (${sent:-0} segments)" test "${sent:-0}" -ge 50000
xdp_check "spoofed ACKs created no conntrack state ($flows entries for 50 held flows)" test "$flows" -le 60
xdp_check "50 established connections held" test "$conns" -eq 50
xdp_check "no established connection was reset" test "$resets" -eq 0
xdp_check "no established connection changed backend" test "$changed" -eq 0
xdp_finish

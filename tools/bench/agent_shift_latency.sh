#!/usr/bin/env bash
# Weight-shift latency of sluiced on both planes, observed from a client.
#
# The agent topology of tests/integration/agent_lib.sh (client, node and 4
# backend namespaces; sluiced with XDP on c0 and b1..b4, the L7 proxy behind
# sk_lookup; productpage v1 = productpage-v1-a/b, v2 = productpage-v2-a/b).
# Weights flip 100/0 <-> 0/100 SHIFTS times in each of three phases:
#   1. `sluicectl weights productpage v1=.. v2=..`   (--debounce-ms 200, the default)
#   2. routing.yaml renamed into the config dir        (--debounce-ms 200)
#   3. routing.yaml renamed into the config dir        (--debounce-ms SMALL_DEBOUNCE, restart)
# while two probers in the client namespace run back to back through the VIP:
#   l4: a new TCP connection to 10.96.0.10:9081 each time (XDP plane);
#   l7: GET / on one keep-alive connection to 10.96.0.10:9080 (L7 plane).
# Per shift, from the moment of the call (t0, CLOCK_MONOTONIC): the CLI's
# return, the first GET /status showing the new version (control plane), and
# the completion of the first probe that lands on the new subset (data plane,
# per plane). Printed: p50/p99/max over the shifts, and the median probe round
# trip as the baseline the data-plane figure is a ratio to (a probe cannot see
# a shift faster than one probe).
#
# Usage: sudo tools/bench/agent_shift_latency.sh [SHIFTS] [SMALL_DEBOUNCE_MS]   (defaults 50, 10)
# Bounded: every prober stops after 180 s at most, every shift waits 10 s at most.
set -uo pipefail
shifts=${1:-50}
small_debounce=${2:-10}
# shellcheck source=agent_bench_lib.sh
source "$(dirname "$0")/agent_bench_lib.sh"
shift_probe="$repo/tools/bench/agent_shift_probe.py"

agent_setup agbshift
agent_write_routing "name: primary" v1 100 0
client=$(topo_ns client)
node=$(topo_ns node)
vip=10.96.0.10

# run_phase NAME ctl|file: probes, SHIFTS shifts, report.
run_phase() {
  local name=$1 how=$2 stop="$AGENT_WORK/stop-$1" p4 p7
  rm -f "$stop"
  topo_exec "$client" python3 "$shift_probe" probe l4 "$vip" 9081 "$AGENT_WORK/$name.l4" \
    --duration-s 180 --stop-file "$stop" &
  p4=$!
  topo_exec "$client" python3 "$shift_probe" probe l7 "$vip" 9080 "$AGENT_WORK/$name.l7" \
    --duration-s 180 --stop-file "$stop" &
  p7=$!
  sleep 2   # probes without shifts first: their stalls are the quiet baseline
  nsenter --net="/run/netns/$node" python3 "$shift_probe" shift "$how" "$AGENT_WORK/$name.shifts" \
    --shifts "$shifts" --admin "$AGENT_ADMIN" --sluicectl "$SLUICECTL" --config-dir "$AGENT_WORK/config" \
    --settle-ms 150
  touch "$stop"
  wait "$p4" "$p7"
  echo "== $name"
  python3 "$shift_probe" report ${SHIFT_DETAIL:+--detail} "$how" "$AGENT_WORK/$name.shifts" "$AGENT_WORK/$name.l4" "$AGENT_WORK/$name.l7"
}

bench_header
echo "agent_shift_latency: $shifts shifts per phase, weights v1/v2 100/0 <-> 0/100, sluiced --workers 2"
bench_start 200
run_phase "sluicectl weights (--debounce-ms 200)" ctl
run_phase "file rename (--debounce-ms 200)" file
agent_stop TERM
bench_start "$small_debounce"
run_phase "file rename (--debounce-ms $small_debounce)" file
grep -c "applied from" "$AGENT_WORK/sluiced.log" | sed 's/^/sluiced log: "applied" lines: /'
grep -E " (error|critical|warning) " "$AGENT_WORK/sluiced.log" | grep -v ": note: " | head -5 || true

#!/usr/bin/env bash
# New TCP connections per second and CPU microseconds per connection through
# the node, one run, same topology (tests/integration/lib/topology.sh), for:
#   xdp       sluice's XDP program (native), VIP 10.96.0.10:9081, 4 backends
#   iptables  kube-proxy's iptables mode: -m statistic random DNAT, 4 backends
#   nftables  nftables numgen random DNAT map, 4 backends
#   direct    the client connects to one backend's address (no balancing)
# Each mode runs ROUNDS times (default 3) of N connections (default 20000,
# 32 in flight) with sluice-loadgen, modes interleaved; the median rate is
# reported and each mode's ratio to direct. CPU is the whole machine's busy
# time from /proc/stat over the run divided by connections (client, node and
# backends all share it, so it is the total cost of a connection).
# Usage: tools/bench/l4_conn_rate.sh [BUILD_DIR]   (root; prints JSON + a table)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
N=${N:-20000}
ROUNDS=${ROUNDS:-3}
export XDP_HARNESS=$build/tests/integration/xdp_harness
export XDP_PASS_OBJ=$build/bpf/xdp_pass.bpf.o
export SLUICE_TEST_BACKEND=$build/tools/sluice-test-backend
export SLUICE_LOADGEN=$build/tools/sluice-loadgen
# shellcheck source=../../tests/integration/xdp_lib.sh
source "$root/tests/integration/xdp_lib.sh"
topo_require_cmd iptables nft

xdp_setup bench
xdp_write_config ROUND_ROBIN 50 50
node=$(topo_ns node)
client=$(topo_ns client)
# Every mode dials the same VIP:port, tens of thousands of times a minute: let
# the client re-use TIME_WAIT ports, or connect() spends its time searching
# for a free ephemeral port and that, not the balancer, is what gets measured.
ip netns exec "$client" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"

busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }

run_mode() {   # run_mode MODE -> "rate cpu_us_per_conn errors"
  local mode=$1 target=10.96.0.10:9081 j0 j1 hz out
  case $mode in
    xdp) xdp_start_harness >/dev/null ;;
    iptables)
      # kube-proxy's cascade: 1/4, then 1/3 of the rest, 1/2, then the last.
      local i p=(0.25 0.33333 0.5)
      for i in 0 1 2; do
        ip netns exec "$node" iptables -t nat -A PREROUTING -d 10.96.0.10 -p tcp --dport 9081 \
          -m statistic --mode random --probability "${p[$i]}" -j DNAT --to-destination "10.200.1$((i + 1)).2:9081"
      done
      ip netns exec "$node" iptables -t nat -A PREROUTING -d 10.96.0.10 -p tcp --dport 9081 \
        -j DNAT --to-destination 10.200.14.2:9081 ;;
    nftables)
      ip netns exec "$node" nft -f - <<'NFT'
table ip slc_bench {
  chain prerouting {
    type nat hook prerouting priority dstnat;
    ip daddr 10.96.0.10 tcp dport 9081 dnat to numgen random mod 4 map { 0 : 10.200.11.2, 1 : 10.200.12.2, 2 : 10.200.13.2, 3 : 10.200.14.2 }
  }
}
NFT
      ;;
    direct) target=10.200.11.2:9081 ;;
  esac
  [[ -n "${BENCH_DEBUG:-}" ]] && ip netns exec "$node" iptables -t nat -S PREROUTING >&2 && ip -n "$node" link show c0 >&2
  hz=$(getconf CLK_TCK)
  j0=$(busy_jiffies)
  xdp_loadgen "$XDP_WORK/$mode.json" tcp --connect "$target" --count "$N" --concurrency 32 --timeout-s 60
  j1=$(busy_jiffies)
  read -r rate errors < <(xdp_json "$XDP_WORK/$mode.json" \
    '"%.0f %d" % (sum(j["backends"].values()) / j["elapsed_s"], sum(j["errors"].values()))')
  echo "$rate $(python3 -c "print('%.1f' % (($j1 - $j0) / $hz * 1e6 / $N))") $errors" >"$XDP_WORK/result"
  case $mode in
    xdp) xdp_stop_harness; rm -rf -- "$XDP_PIN" ;;
    iptables) ip netns exec "$node" iptables -t nat -F PREROUTING ;;
    nftables) ip netns exec "$node" nft delete table ip slc_bench ;;
  esac
}

declare -A rates cpus errs
for round in $(seq "$ROUNDS"); do
  for mode in ${MODES:-direct xdp iptables nftables}; do
    run_mode $mode >/dev/null
    read -r r c e <"$XDP_WORK/result"
    rates[$mode]+="$r "
    cpus[$mode]+="$c "
    errs[$mode]=$((${errs[$mode]:-0} + e))
    echo "round $round $mode: $r conn/s, $c us CPU/conn, errors $e" >&2
  done
done
python3 - "$N" "$ROUNDS" "${rates[direct]}" "${rates[xdp]}" "${rates[iptables]}" "${rates[nftables]}" \
  "${cpus[direct]}" "${cpus[xdp]}" "${cpus[iptables]}" "${cpus[nftables]}" \
  "${errs[direct]}" "${errs[xdp]}" "${errs[iptables]}" "${errs[nftables]}" <<'PY'
import json, statistics, sys
n, rounds = int(sys.argv[1]), int(sys.argv[2])
modes = ["direct", "xdp", "iptables", "nftables"]
rate = {m: [float(x) for x in sys.argv[3 + i].split()] for i, m in enumerate(modes)}
cpu = {m: [float(x) for x in sys.argv[7 + i].split()] for i, m in enumerate(modes)}
err = {m: int(sys.argv[11 + i]) for i, m in enumerate(modes)}
res = {m: {"conn_per_s_median": statistics.median(rate[m]), "conn_per_s": rate[m],
           "cpu_us_per_conn_median": statistics.median(cpu[m]), "errors": err[m]} for m in modes}
for m in modes:
    res[m]["rate_ratio_to_direct"] = res[m]["conn_per_s_median"] / res["direct"]["conn_per_s_median"]
    res[m]["cpu_ratio_to_direct"] = res[m]["cpu_us_per_conn_median"] / res["direct"]["cpu_us_per_conn_median"]
print(json.dumps({"connections_per_round": n, "rounds": rounds, "modes": res}, indent=2))
print("| mode | conn/s (median) | vs direct | CPU us/conn | vs direct | errors |", file=sys.stderr)
print("|---|---|---|---|---|---|", file=sys.stderr)
for m in modes:
    r = res[m]
    print(f"| {m} | {r['conn_per_s_median']:.0f} | {r['rate_ratio_to_direct']:.2f} | {r['cpu_us_per_conn_median']:.1f} | {r['cpu_ratio_to_direct']:.2f} | {r['errors']} |", file=sys.stderr)
PY

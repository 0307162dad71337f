#!/usr/bin/env bash
# The forwarder's exception path (sluice-fwd --exception-tap), on net_af_xdp
# vdevs, where the node's kernel sees no frame of its veths: each DPDK port
# gets a TAP with the port's MAC, the node's addresses move from the veths
# onto the TAPs (dpdk_lib.sh), and there is no static neighbour anywhere.
# sluiced owns the tables (sk_lookup and the L7 proxy in the node namespace).
# Asserted from outside:
#  (a) the client and the backends learn their gateway by ARP and ND (ip
#      neigh: the node port's MAC, not PERMANENT) and their pings to it are
#      answered: the node's kernel answers through the TAPs;
#  (b) the client reaches a TCP server on the node's own address (v4, v6):
#      200 + 100 connections, all answered;
#  (c) L4 VIP traffic is still steered by the forwarder: 10,000 connections
#      70/30 +- 1.5 points (dpdk_check_split), no checksum error anywhere, the
#      node's kernel included;
#  (d) L7: 200 HTTP requests to VIP:9080 (one connection each) reach the
#      kernel through the TAP, sk_lookup hands them to sluiced's proxy, which
#      reaches the backends through the backend ports' TAPs and the
#      forwarder: all 200 answered 200, by both subsets;
#  (e) the TAP counters are non-zero on every port and consistent: per port,
#      the forwarder's to_kernel equals the TAP device's TX count and its
#      from_kernel (+ dropped) the TAP's RX count; every "pass" verdict went
#      to a TAP (or was counted other_host); partial checksums were
#      completed; sluiced exports them as sluice_dpdk_exception_*.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export DPDK_VDEV=net_af_xdp DPDK_EXCEPTION_TAPS=1
# shellcheck source=dpdk_lib.sh
source "$here/dpdk_lib.sh"
: "${SLUICED:?set SLUICED to the sluiced binary}"

dpdk_setup exception
node=$(topo_ns node)
xdp_write_config ROUND_ROBIN 70 30
# Port 9080 HTTP with an http route (70/30 per request): the L7 plane. The
# tcp route keeps 9081 on the L4 plane, the forwarder's.
sed -i 's/^  ports:$/  ports:\n  - {number: 9080, name: http, protocol: HTTP}/' "$XDP_WORK/config/serviceentry.yaml"
sed -i 's/^  tcp:$/  http:\n  - route:\n    - {destination: {host: productpage, subset: v1}, weight: 70}\n    - {destination: {host: productpage, subset: v2}, weight: 30}\n  tcp:/' \
  "$XDP_WORK/config/routing.yaml"
for i in 1 2 3 4; do
  topo_spawn "$(topo_ns backend "$i")" "$SLUICE_TEST_BACKEND" --name "${XDP_BACKEND_NAMES[$((i - 1))]}" --http 9080
done
for i in 1 2 3 4; do topo_wait_port "$node" "$(topo_addr backend "$i")" 9080 || exit 1; done
topo_spawn "$node" "$SLUICE_TEST_BACKEND" --name node-itself --tcp 9300
topo_wait_port "$node" 127.0.0.1 9300 || exit 1
dpdk_start_agent
dpdk_start_forwarder 150

# (a) ARP/ND through the forwarder, answered by the node's kernel.
for i in 0 1 2 3 4; do
  for family in 4 6; do
    if ((i == 0)); then ns=$(topo_ns client) gw=$(topo_addr node-client "$family")
    else ns=$(topo_ns backend "$i") gw=$(topo_addr node-backend "$i" "$family"); fi
    read -r sent received < <(ip netns exec "$ns" python3 "$here/icmp_echo.py" "$gw" 5 5)
    xdp_check "$ns pings the node at $gw through the forwarder ($received/$sent answered)" \
      test "${received:-0}" -eq 5
  done
done
dpdk_check_gateway_learned 4 6

# (b) the node's own TCP service, v4 and v6. Each connection may take up to
# 15 s: on net_af_xdp over veth a lone kernel reply is sometimes lost after a
# quiet spell and TCP's SYN retransmission (1 s, then 3 s, 7 s) recovers it
# (docs/dpdk.md, Known gaps); what this checks is that every connection gets
# through the exception path, not how fast.
xdp_loadgen "$XDP_WORK/node4.json" tcp --connect "$(topo_addr node-client):9300" --count 200 --concurrency 8 \
  --conn-timeout-ms 15000 --timeout-s 90
xdp_loadgen "$XDP_WORK/node6.json" tcp --connect "[$(topo_addr node-client 6)]:9300" --count 100 --concurrency 8 \
  --conn-timeout-ms 15000 --timeout-s 90
for f in node4:200 node6:100; do
  read -r answered errors < <(xdp_json "$XDP_WORK/${f%:*}.json" \
    'str(j["backends"].get("node-itself", 0)) + " " + str(sum(j["errors"].values()))')
  if ((errors > 0)); then
    xdp_json "$XDP_WORK/${f%:*}.json" 'json.dumps({k: j[k] for k in ["errors", "other_errnos", "elapsed_s"] if k in j})'
    for ns in "$node" "$(topo_ns client)"; do
      echo "$ns: $(ip netns exec "$ns" nstat -azs TcpExtListenOverflows TcpExtListenDrops TcpRetransSegs \
        TcpExtTCPTimeouts TcpExtTCPSynRetrans | awk 'NR > 1 {printf "%s=%s ", $1, $2}')"
    done
    ip -n "$node" -s link show xc0 | sed -n 3,6p
    ip -n "$node" neigh show dev xc0
    ip -n "$(topo_ns client)" neigh show dev eth0
  fi
  xdp_check "${f%:*}: ${f#*:} TCP connections to the node's own address answered ($answered, $errors errors)" \
    test "$answered" -eq "${f#*:}" -a "$errors" -eq 0
done

# (c) the VIP's L4 port is still the forwarder's.
dpdk_check_split 10000

# (d) the VIP's L7 port, through the TAP to sluiced's proxy and back.
xdp_loadgen "$XDP_WORK/l7.json" http --url "http://10.96.0.10:9080/" --count 200 --concurrency 4 --timeout-s 60
read -r ok v1 v2 errors < <(xdp_json "$XDP_WORK/l7.json" '
" ".join(str(x) for x in [j["status"].get("200", 0),
  sum(n for b, n in j["backends"].items() if b.startswith("productpage-v1")),
  sum(n for b, n in j["backends"].items() if b.startswith("productpage-v2")), sum(j["errors"].values())])')
echo "l7: 200 OK=$ok v1=$v1 v2=$v2 errors=$errors"
xdp_check "200 HTTP requests to the L7 VIP answered 200 through the exception path ($ok, $errors errors)" \
  test "$ok" -eq 200 -a "$errors" -eq 0
# 70/30 per request: P(no v2 in 200) = 0.7^200 < 1e-30.
xdp_check "the proxy behind the TAP reached both subsets (v1=$v1 v2=$v2)" test "$v1" -gt 0 -a "$v2" -gt 0

# (e) the counters, through the agent while the forwarder runs...
sleep 1.2   # one more stats write
nsenter --net="/run/netns/$node" curl -sf -m 20 "http://$DPDK_ADMIN/stats/prometheus" >"$XDP_WORK/metrics.txt"
exported=$(awk '$1 ~ /^sluice_dpdk_exception_packets_total\{port="0",iface="xc0",direction="to_kernel"\}/ {print $2}' \
  "$XDP_WORK/metrics.txt")
xdp_check "sluiced exports the forwarder's exception counters (port 0 to_kernel: ${exported:-none})" \
  test "${exported:-0}" -gt 0
proxied=$(awk '$1 ~ /^istio_requests_total\{/ && $1 ~ /response_code="200"/ {n += $2} END {print n + 0}' \
  "$XDP_WORK/metrics.txt")
xdp_check "sluiced's proxy served the L7 requests (istio_requests_total 200s: $proxied >= 200)" test "$proxied" -ge 200
# ... and exactly, from the file the forwarder writes as it stops (no frame
# in flight between two counters).
dpdk_stop_forwarder
python3 - "$XDP_WORK/fwd-stats.json" >"$XDP_WORK/exception-check.txt" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
g, ports = j["global"], j["ports"]
for port, t in sorted(j["exception_taps"].items()):
    tap = ports[str(t["tap_port"])]
    print(f"port {port} ({t['iface']}): to_kernel={t['to_kernel']} (tap tx {tap['tx_packets']}, dropped "
          f"{t['to_kernel_dropped']}) from_kernel={t['from_kernel']} (tap rx {tap['rx_packets']}, dropped "
          f"{t['from_kernel_dropped']}) other_host={t['other_host']} checksums_completed={t['checksum_completed']}")
    print("CHECK", "nonzero", port, int(t["to_kernel"] > 0 and t["from_kernel"] > 0))
    print("CHECK", "tap_tx", port, int(t["to_kernel"] == tap["tx_packets"]))
    print("CHECK", "tap_rx", port, int(t["from_kernel"] + t["from_kernel_dropped"] == tap["rx_packets"]))
passes = sum(v for k, v in g.items() if k.startswith("pass_"))
given = g["exception_to_kernel"] + g["exception_to_kernel_dropped"] + g["exception_other_host"]
print(f"global: pass verdicts {passes} = to_kernel {g['exception_to_kernel']} + dropped "
      f"{g['exception_to_kernel_dropped']} + other_host {g['exception_other_host']}; pass_l7 {g['pass_l7']}; "
      f"checksums completed {g['exception_checksum_completed']}")
print("CHECK", "pass_to_tap", "all", int(passes == given))
print("CHECK", "pass_l7", "all", int(g["pass_l7"] > 0 and g["pass_l7"] <= g["exception_to_kernel"]))
print("CHECK", "checksums", "all", int(g["exception_checksum_completed"] > 0))
print("CHECK", "ports", "all", int(len(j["exception_taps"]) == 5))
PY
grep -v '^CHECK' "$XDP_WORK/exception-check.txt"
declare -A what=(
  [nonzero]="frames went to the kernel and came back through the TAP"
  [tap_tx]="the forwarder's to_kernel equals the TAP device's TX count"
  [tap_rx]="the forwarder's from_kernel (+ dropped) equals the TAP device's RX count"
  [pass_to_tap]="every pass verdict went into a TAP (or was another host's unicast)"
  [pass_l7]="L7 VIP packets went to the kernel, not to a backend (pass_l7 > 0, within to_kernel)"
  [checksums]="partial checksums from the veth senders were completed before the TAP"
  [ports]="all 5 ports have an exception TAP in the stats file")
while read -r _ check scope ok; do
  xdp_check "${what[$check]} ($scope)" test "$ok" -eq 1
done < <(grep '^CHECK' "$XDP_WORK/exception-check.txt")
if ((xdp_failures > 0)); then
  echo "--- sluiced log ---"
  tail -20 "$XDP_WORK/sluiced.log"
fi
dpdk_finish

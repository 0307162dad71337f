#!/usr/bin/env bash
# sluice-fwd on af_packet vdevs over the node's veths: 10,000 new TCP
# connections to productpage VIP 10.96.0.10:9081 split 70/30 between
# subsets v1 and v2, ROUND_ROBIN inside each, no connection failing, no
# checksum error at any receiver. Tolerance: v1's share is binomial, sd =
# sqrt(.7*.3/10000) = 0.46 points, so +-1.5 points is > 3 sd. One lcore, so
# round robin alternates exactly: the two backends of a subset differ by <= 1.
# DPDK_VDEV=net_af_xdp runs the same over AF_XDP sockets.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=dpdk_lib.sh
source "$here/dpdk_lib.sh"

dpdk_setup split
xdp_write_config ROUND_ROBIN 70 30
dpdk_start_tables
dpdk_start_forwarder 100

n=10000
xdp_loadgen "$XDP_WORK/tcp.json" tcp --connect 10.96.0.10:9081 --count $n --concurrency 32 --timeout-s 60
read -r v1a v1b v2a v2b ok errors < <(xdp_json "$XDP_WORK/tcp.json" \
  '" ".join(str(j["backends"].get(b,0)) for b in ["productpage-v1-a","productpage-v1-b","productpage-v2-a","productpage-v2-b"]) + " " + str(sum(j["backends"].values())) + " " + str(sum(j["errors"].values()))')
echo "tcp: v1-a=$v1a v1-b=$v1b v2-a=$v2a v2-b=$v2b answered=$ok errors=$errors"
xdp_check "all $n connections answered" test "$ok" -eq $n
xdp_check "no connection errors" test "$errors" -eq 0
v1_share=$(python3 -c "print(100*($v1a+$v1b)/max(1,$ok))")
xdp_check "v1 share $v1_share% within 70 +- 1.5" python3 -c "import sys; sys.exit(abs($v1_share-70) > 1.5)"
xdp_check "round robin even inside v1 (|$v1a-$v1b| <= 1)" python3 -c "import sys; sys.exit(abs($v1a-$v1b) > 1)"
xdp_check "round robin even inside v2 (|$v2a-$v2b| <= 1)" python3 -c "import sys; sys.exit(abs($v2a-$v2b) > 1)"

csum_errors=0
for ns in "$(topo_ns client)" $(for i in 1 2 3 4; do topo_ns backend "$i"; done); do
  e=$(ip netns exec "$ns" nstat -az TcpInCsumErrors | awk '$1=="TcpInCsumErrors"{print $2}')
  csum_errors=$((csum_errors + ${e:-0}))
done
xdp_check "no TCP checksum errors at the client or the backends ($csum_errors)" test "$csum_errors" -eq 0

sleep 1.2   # one more stats write
new_flows=$(xdp_json "$XDP_WORK/fwd-stats.json" 'j["global"]["new_flows"]')
xdp_check "the forwarder counted $new_flows new flows (>= $n)" test "$new_flows" -ge $n
xdp_check "the forwarder ran reverse NAT" test "$(xdp_json "$XDP_WORK/fwd-stats.json" 'j["global"]["reverse_nat"]')" -gt 0

# Every connection closed (FIN): its flow leaves the forwarder's tables after
# the conntrack closing timeout (sluice_ctrl.closing_ns, 10 s by default) plus
# one sweep pass (2 s), and is counted closed in the shared least-request map.
flows=""
for _ in $(seq 30); do
  sleep 1
  flows=$(xdp_json "$XDP_WORK/fwd-stats.json" 'j["flows"] + j["reverse_flows"]')
  [[ $flows -eq 0 ]] && break
done
# A connection whose client port was free again before its old flow expired
# re-opens that entry in place (flows_reopened): each new flow is either
# expired or re-opened.
read -r new expired reopened < <(xdp_json "$XDP_WORK/fwd-stats.json" \
  '" ".join(str(j["global"][k]) for k in ["new_flows", "flows_expired", "flows_reopened"])')
echo "flow tables after the closing timeout: $flows entries; $new new flows, $expired expired, $reopened re-opened"
xdp_check "the closed flows expired from both flow tables ($flows entries left)" test "$flows" -eq 0
xdp_check "every flow was expired by the sweeper or re-opened ($expired + $reopened == $new)" \
  test $((expired + reopened)) -eq "$new"
xdp_stats
read -r opened closed < <(xdp_json "$XDP_WORK/stats.json" \
  '" ".join(str(sum(b[k] for b in j["backends"])) for k in ["l4_opened", "l4_closed"])')
echo "shared least-request map: l4_opened=$opened l4_closed=$closed"
xdp_check "the forwarder's flows were counted in the shared least-request map ($opened >= $n)" test "$opened" -ge $n
xdp_check "and all of them closed again: no active flow left ($opened opened, $closed closed)" test "$opened" -eq "$closed"
dpdk_finish

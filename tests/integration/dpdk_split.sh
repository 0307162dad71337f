#!/usr/bin/env bash
# sluice-fwd on af_packet vdevs over the node's veths: 10,000 new TCP
# connections to productpage VIP 10.96.0.10:9081 split 70/30 between
# subsets v1 and v2, ROUND_ROBIN inside each, no connection failing, no
# checksum error at any receiver. Tolerance: v1's share is binomial, sd =
# sqrt(.7*.3/10000) = 0.46 points, so +-1.5 points is > 3 sd. One lcore, so
# round robin alternates exactly: the two backends of a subset differ by <= 1.
# DPDK_VDEV=net_af_xdp runs the same over AF_XDP sockets, where the node's
# kernel sees no frame of the veths: the ports get exception TAPs that carry
# the node's addresses, and the client and backends learn their gateway by
# ARP through the forwarder (dpdk_lib.sh; no static neighbour).
# Last (over AF_XDP), a switch to PASSTHROUGH (kube-proxy's iptables DNAT
# decides) while 20 flows the forwarder steered round robin to v2-a and v2-b
# (the DNAT target) and that ended with a RST are still in its tables as
# closing: 20 new connections on the same tuples all reach the DNAT target
# and echo; none of their packets follows an old forward entry, none of v2-b's
# replies an old reverse entry (docs/bpf-datapath.md, "A tuple handed to the
# kernel").
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=dpdk_lib.sh
source "$here/dpdk_lib.sh"
topo_require_cmd iptables

dpdk_setup split
xdp_write_config ROUND_ROBIN 70 30
dpdk_start_tables
dpdk_start_forwarder 100

n=10000
dpdk_check_split $n
# Over AF_XDP the client and backends learned their gateway by ARP through
# the forwarder and the node's exception TAPs (no static neighbour).
((DPDK_EXCEPTION_TAPS)) && dpdk_check_gateway_learned 4

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

if ((DPDK_EXCEPTION_TAPS)); then
  # A kube-proxy node forwards (ip_forward=1); behind the exception TAPs the
  # node's kernel sees only the frames the forwarder hands it, so it may.
  # (Over af_packet it sees a copy of every frame and must not forward.)
  # 15 s per connection: a lone kernel reply over net_af_xdp is sometimes
  # lost and TCP's retransmission recovers it (dpdk_exception_path.sh).
  ip netns exec "$(topo_ns node)" sysctl -qw net.ipv4.ip_forward=1
  xdp_write_config ROUND_ROBIN 0 100
  dpdk_reapply
  xdp_reuse_open "$XDP_WORK/reuse-open.json"
  xdp_check "PASSTHROUGH: before, 20 flows steered round robin, 10 to the later DNAT target v2-b" \
    test "$(xdp_json "$XDP_WORK/reuse-open.json" 'j["backends"].get("productpage-v2-b", 0)')" -eq 10
  xdp_write_config PASSTHROUGH 100 0
  dpdk_reapply
  xdp_dnat_vip_to_v2b
  xdp_reuse_check "$XDP_WORK/reuse-open.json" "$XDP_WORK/reuse-check.json" 15
fi
dpdk_finish

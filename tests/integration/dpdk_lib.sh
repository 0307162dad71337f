# shellcheck shell=bash
# Shared setup of the dpdk_* integration tests: the team topology, with the
# node's veths (c0 toward the client, b1..b4 toward the backends) handed to
# sluice-fwd as net_af_packet (default) or net_af_xdp vdevs, the tables
# written into a private pin dir by xdp_harness (no XDP attached: the maps
# only) or by sluiced, and the xdp_* tests' backends, config and load
# generator (xdp_lib.sh).
#
# net_af_packet: the node's kernel still sees every frame of the veths (it
# answers ARP), but forwarding is off in the node namespace, so only the
# forwarder carries VIP traffic and replies. net_af_xdp takes the frames away
# from the kernel: every port then gets an exception TAP (sluice-fwd
# --exception-tap, named x<veth>: xc0, xb1..xb4) and the node's addresses
# move from the veths onto the TAPs, as an operator moves them from a NIC
# given to DPDK; the kernel answers ARP/ND and reaches the client and the
# backends through the forwarder (DPDK_EXCEPTION_TAPS=0/1 overrides).
# TSO/GSO are off on every veth end: an af_packet socket would see a 64 KB
# super-frame that does not fit an mbuf.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=xdp_lib.sh
source "$here/xdp_lib.sh"

: "${SLUICE_FWD:?set SLUICE_FWD to the sluice-fwd binary}"
DPDK_VDEV="${DPDK_VDEV:-net_af_packet}"
if [[ $DPDK_VDEV == net_af_xdp ]]; then DPDK_EXCEPTION_TAPS="${DPDK_EXCEPTION_TAPS:-1}"; fi
DPDK_EXCEPTION_TAPS="${DPDK_EXCEPTION_TAPS:-0}"
DPDK_NODE_PORTS=(c0 b1 b2 b3 b4)   # DPDK port i is the node's veth DPDK_NODE_PORTS[i]
DPDK_FWD_PID=""

dpdk_link_hook() {   # TOPO_LINK_HOOK: no segmentation offloads anywhere
  local ns=$1 ifname=$2
  ip netns exec "$ns" ethtool -K "$ifname" tso off gso off gro off >/dev/null 2>&1
}

dpdk_setup() {   # dpdk_setup NAME
  local name=$1 ns
  topo_require_root
  topo_require_cmd ip nsenter python3 ethtool
  [[ -x "$SLUICE_FWD" ]] || _topo_fail_or_skip "sluice-fwd (build with DPDK: meson -Ddpdk=enabled)"
  if ((DPDK_EXCEPTION_TAPS)); then
    [[ -c /dev/net/tun ]] || _topo_fail_or_skip "/dev/net/tun (the exception TAPs: modprobe tun)"
  fi
  [[ -d /sys/fs/bpf ]] && { mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; }
  TOPO_LINK_HOOK=dpdk_link_hook
  topo_create "slcd-$name$$" 4 || { echo "FAIL: topology setup"; exit 1; }
  XDP_WORK=$(mktemp -d "/tmp/slc-dpdk-$name.XXXXXX")
  XDP_PIN="/sys/fs/bpf/slc-dpdk-$name-$$"
  topo_on_cleanup "dpdk_teardown"
  xdp_start_backends
  # From here on only the forwarder moves packets between the node's veths.
  ns=$(topo_ns node)
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
  return 0
}

dpdk_teardown() {
  dpdk_stop_forwarder
  xdp_teardown
}

# Tables only: the harness loads the maps into $XDP_PIN and applies the config.
dpdk_start_tables() {
  local i
  rm -f "$XDP_WORK/status.json"
  "$XDP_HARNESS" --config-dir "$XDP_WORK/config" --pin-dir "$XDP_PIN" \
    --status-file "$XDP_WORK/status.json" --stats-file "$XDP_WORK/stats.json" >>"$XDP_WORK/harness.log" 2>&1 &
  XDP_HARNESS_PID=$!
  for i in $(seq 100); do
    [[ -f "$XDP_WORK/status.json" ]] && return 0
    kill -0 "$XDP_HARNESS_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: xdp_harness did not start; its log:" >&2
  cat "$XDP_WORK/harness.log" >&2
  exit 1
}

dpdk_mac() { ip -n "$1" -j link show dev "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])'; }

dpdk_tap_of() { echo "x$1"; }   # the exception TAP of node veth $1 (c0 -> xc0)

# The node's IPv4/IPv6 address on the veth that DPDK port of veth $1 is.
dpdk_node_addrs() {   # dpdk_node_addrs VETH: prints "ADDR4/24 ADDR6/64"
  case "$1" in
    c0) echo "$(topo_addr node-client)/24 $(topo_addr node-client 6)/64" ;;
    b*) echo "$(topo_addr node-backend "${1#b}")/24 $(topo_addr node-backend "${1#b}" 6)/64" ;;
  esac
}

# Moves the node's addresses from each veth to its exception TAP (the
# connected routes follow), then makes the client and the backends forget
# their gateway's MAC: they must learn it again by ARP/ND, through the
# forwarder and the node's kernel behind the TAP.
dpdk_move_addresses_to_taps() {
  local node ifname a4 a6 ns
  node=$(topo_ns node)
  for ifname in "${DPDK_NODE_PORTS[@]}"; do
    read -r a4 a6 < <(dpdk_node_addrs "$ifname")
    if ! { ip -n "$node" addr del "$a4" dev "$ifname" && ip -n "$node" addr del "$a6" dev "$ifname" &&
      ip -n "$node" addr add "$a4" dev "$(dpdk_tap_of "$ifname")" &&
      ip -n "$node" addr add "$a6" dev "$(dpdk_tap_of "$ifname")" nodad; }; then
      echo "FAIL: moving $a4 $a6 from $ifname to $(dpdk_tap_of "$ifname")" >&2
      exit 1
    fi
  done
  for ns in "$(topo_ns client)" $(for i in 1 2 3 4; do topo_ns backend "$i"; done); do
    ip -n "$ns" neigh flush dev eth0
    ip -n "$ns" -6 neigh flush dev eth0
  done
}

# dpdk_start_forwarder SECONDS: sluice-fwd in the node namespace, one lcore,
# no hugepages, bounded in time. It sleeps 20 us after an empty poll round
# (DPDK_IDLE_SLEEP_US; 0 busy-polls): the test host's CPUs are shared.
dpdk_start_forwarder() {
  local seconds=$1 node i mac vdevs=() routes=() taps=() p=0
  node=$(topo_ns node)
  for ifname in "${DPDK_NODE_PORTS[@]}"; do
    if [[ $DPDK_VDEV == net_af_xdp ]]; then
      vdevs+=(--vdev "net_af_xdp$p,iface=$ifname,start_queue=0,queue_count=1")
    else
      vdevs+=(--vdev "net_af_packet$p,iface=$ifname,qpairs=1")
    fi
    ((DPDK_EXCEPTION_TAPS)) && taps+=(--exception-tap "$p=$(dpdk_tap_of "$ifname")")
    p=$((p + 1))
  done
  mac=$(dpdk_mac "$(topo_ns client)" eth0)
  routes+=(--route "10.200.1.0/24@0=$mac" --route "fd00:200:1::/64@0=$mac")
  for i in 1 2 3 4; do
    mac=$(dpdk_mac "$(topo_ns backend "$i")" eth0)
    routes+=(--route "$(topo_addr backend "$i" | sed 's/\.2$/.0/')/24@$i=$mac")
    routes+=(--route "$(topo_addr backend "$i" 6 | sed 's/::2$/::/')/64@$i=$mac")
  done
  rm -f "$XDP_WORK/fwd-stats.json"
  nsenter --net="/run/netns/$node" timeout --signal=TERM --kill-after=5 "$seconds" \
    "$SLUICE_FWD" -l 0 --no-huge -m 512 --no-pci --no-telemetry --file-prefix "slc-dpdk-$$" --log-level=warning \
    "${vdevs[@]}" -- --pin-dir "$XDP_PIN" "${routes[@]}" "${taps[@]}" --stats-file "$XDP_WORK/fwd-stats.json" \
    --idle-sleep-us "${DPDK_IDLE_SLEEP_US:-20}" >>"$XDP_WORK/fwd.log" 2>&1 &
  DPDK_FWD_PID=$!
  for i in $(seq 150); do
    if [[ -s "$XDP_WORK/fwd-stats.json" ]]; then
      ((DPDK_EXCEPTION_TAPS)) && dpdk_move_addresses_to_taps
      return 0
    fi
    kill -0 "$DPDK_FWD_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: sluice-fwd did not start; its log:" >&2
  cat "$XDP_WORK/fwd.log" >&2
  exit 1
}

# Stops the forwarder. Its TAPs go with it, and the node's addresses on
# them: those go back onto the veths, so the topology is whole again.
dpdk_stop_forwarder() {
  local node ifname a4 a6
  [[ -n "$DPDK_FWD_PID" ]] || return 0
  kill -TERM "$DPDK_FWD_PID" 2>/dev/null
  wait "$DPDK_FWD_PID" 2>/dev/null
  DPDK_FWD_PID=""
  if ((DPDK_EXCEPTION_TAPS)); then
    node=$(topo_ns node)
    for ifname in "${DPDK_NODE_PORTS[@]}"; do
      read -r a4 a6 < <(dpdk_node_addrs "$ifname")
      ip -n "$node" addr replace "$a4" dev "$ifname"
      ip -n "$node" addr replace "$a6" dev "$ifname" nodad
    done
  fi
}

dpdk_finish() {
  if ((xdp_failures > 0)); then
    echo "--- forwarder log ---"
    tail -20 "$XDP_WORK/fwd.log"
    echo "--- forwarder stats (global, ports) ---"
    xdp_json "$XDP_WORK/fwd-stats.json" 'json.dumps({"global": j["global"], "ports": j.get("ports")})'
    exit 1
  fi
  exit 0
}

dpdk_snapshots() { xdp_json "$XDP_WORK/fwd-stats.json" 'j["snapshots_applied"]' 2>/dev/null; }

# Re-applies the config dir and waits until the forwarder runs the new tables.
dpdk_reapply() {
  local before i now
  before=$(dpdk_snapshots)
  xdp_reapply || return 1
  for i in $(seq 200); do
    now=$(dpdk_snapshots)
    [[ -n "$now" && "$now" -gt "$before" ]] && return 0
    sleep 0.01
  done
  echo "FAIL: sluice-fwd did not pick up the new generation within 2 s" >&2
  return 1
}

# dpdk_check_split N: N new TCP connections from the client to productpage
# VIP 10.96.0.10:9081 (config 70/30, ROUND_ROBIN) through the forwarder: all
# answered, no error, v1's share 70 +- 1.5 points (binomial sd for 10,000 is
# sqrt(.7*.3/10000) = 0.46 points, so > 3 sd), round robin exact inside each
# subset (one lcore: the two backends of a subset differ by <= 1), and no TCP
# checksum error at the client, the backends or the node (whose kernel gets
# frames through the exception TAPs when there are some).
dpdk_check_split() {
  local n=$1 v1a v1b v2a v2b ok errors v1_share csum_errors=0 ns e
  xdp_loadgen "$XDP_WORK/tcp.json" tcp --connect 10.96.0.10:9081 --count "$n" --concurrency 32 --timeout-s 60
  read -r v1a v1b v2a v2b ok errors < <(xdp_json "$XDP_WORK/tcp.json" \
    '" ".join(str(j["backends"].get(b,0)) for b in ["productpage-v1-a","productpage-v1-b","productpage-v2-a","productpage-v2-b"]) + " " + str(sum(j["backends"].values())) + " " + str(sum(j["errors"].values()))')
  echo "tcp: v1-a=$v1a v1-b=$v1b v2-a=$v2a v2-b=$v2b answered=$ok errors=$errors"
  xdp_check "all $n connections answered" test "$ok" -eq "$n"
  xdp_check "no connection errors" test "$errors" -eq 0
  v1_share=$(python3 -c "print(100*($v1a+$v1b)/max(1,$ok))")
  xdp_check "v1 share $v1_share% within 70 +- 1.5" python3 -c "import sys; sys.exit(abs($v1_share-70) > 1.5)"
  xdp_check "round robin even inside v1 (|$v1a-$v1b| <= 1)" python3 -c "import sys; sys.exit(abs($v1a-$v1b) > 1)"
  xdp_check "round robin even inside v2 (|$v2a-$v2b| <= 1)" python3 -c "import sys; sys.exit(abs($v2a-$v2b) > 1)"
  for ns in "$(topo_ns client)" "$(topo_ns node)" $(for i in 1 2 3 4; do topo_ns backend "$i"; done); do
    e=$(ip netns exec "$ns" nstat -azs TcpInCsumErrors | awk '$1=="TcpInCsumErrors"{print $2}')
    csum_errors=$((csum_errors + ${e:-0}))
  done
  xdp_check "no TCP checksum errors at the client, the node or the backends ($csum_errors)" test "$csum_errors" -eq 0
}

# dpdk_start_agent: sluiced in the node namespace owns the pinned tables
# (instead of xdp_harness: no XDP attached, sk_lookup and the L7 proxy on),
# reads the forwarder's stats file; its admin API is on $DPDK_ADMIN.
DPDK_ADMIN=""
dpdk_start_agent() {
  local node pid ready=0
  : "${SLUICED:?set SLUICED to the sluiced binary}"
  node=$(topo_ns node)
  DPDK_ADMIN="127.0.0.1:$((20000 + $$ % 20000))"
  nsenter --net="/run/netns/$node" "$SLUICED" --config-dir "$XDP_WORK/config" --pin-dir "$XDP_PIN" \
    --admin "$DPDK_ADMIN" --admin-socket "$XDP_WORK/admin.sock" --workers 1 --dpdk-stats "$XDP_WORK/fwd-stats.json" >>"$XDP_WORK/sluiced.log" 2>&1 &
  pid=$!
  topo_on_cleanup "kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null"
  for _ in $(seq 100); do
    nsenter --net="/run/netns/$node" curl -sf "http://$DPDK_ADMIN/ready" >/dev/null 2>&1 && { ready=1; break; }
    sleep 0.1
  done
  [[ $ready -eq 1 ]] || { echo "FAIL: sluiced not ready"; tail -20 "$XDP_WORK/sluiced.log"; exit 1; }
}

# dpdk_check_gateway_learned [FAMILY...]: the client's and backends'
# neighbour entries for their gateway (IPv4 ARP, IPv6 ND; default both) were
# learned and carry the MAC of the node's port, i.e. the node's kernel
# answered through the exception TAP.
dpdk_check_gateway_learned() {
  local node ns gw port state mac want family i families=("$@")
  ((${#families[@]})) || families=(4 6)
  node=$(topo_ns node)
  for i in 0 1 2 3 4; do
    port=${DPDK_NODE_PORTS[$i]}
    want=$(dpdk_mac "$node" "$port")
    for family in "${families[@]}"; do
      if ((i == 0)); then ns=$(topo_ns client) gw=$(topo_addr node-client "$family")
      else ns=$(topo_ns backend "$i") gw=$(topo_addr node-backend "$i" "$family"); fi
      read -r mac state < <(ip -n "$ns" -j neigh show "$gw" dev eth0 | python3 -c '
import json, sys
e = json.load(sys.stdin)
print(e[0].get("lladdr", "-"), "/".join(e[0].get("state", ["-"]))) if e else print("- NONE")')
      xdp_check "$ns learned gateway $gw: $mac $state (want $want, not PERMANENT)" \
        test "$mac" = "$want" -a "$state" != PERMANENT -a "$state" != FAILED -a "$state" != INCOMPLETE
    done
  done
}

# shellcheck shell=bash
# Shared setup of the dpdk_* integration tests: the team topology, with the
# node's veths (c0 toward the client, b1..b4 toward the backends) handed to
# sluice-fwd as net_af_packet (default) or net_af_xdp vdevs, the tables
# written into a private pin dir by xdp_harness (no XDP attached: the maps
# only) or by sluiced, and the xdp_* tests' backends, config and load
# generator (xdp_lib.sh).
#
# The node's kernel still owns the veths (it answers ARP), but forwarding is
# off in the node namespace, so only the forwarder carries VIP traffic and
# replies. TSO/GSO are off on every veth end: an af_packet socket would see a
# 64 KB super-frame that does not fit an mbuf.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=xdp_lib.sh
source "$here/xdp_lib.sh"

: "${SLUICE_FWD:?set SLUICE_FWD to the sluice-fwd binary}"
DPDK_VDEV="${DPDK_VDEV:-net_af_packet}"
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

# dpdk_start_forwarder SECONDS: sluice-fwd in the node namespace, one lcore,
# no hugepages, bounded in time. It sleeps 20 us after an empty poll round
# (DPDK_IDLE_SLEEP_US; 0 busy-polls): the test host's CPUs are shared.
dpdk_start_forwarder() {
  local seconds=$1 node i mac vdevs=() routes=() p=0
  node=$(topo_ns node)
  for ifname in c0 b1 b2 b3 b4; do
    if [[ $DPDK_VDEV == net_af_xdp ]]; then
      vdevs+=(--vdev "net_af_xdp$p,iface=$ifname,start_queue=0,queue_count=1")
    else
      vdevs+=(--vdev "net_af_packet$p,iface=$ifname,qpairs=1")
    fi
    p=$((p + 1))
  done
  mac=$(dpdk_mac "$(topo_ns client)" eth0)
  routes+=(--route "10.200.1.0/24@0=$mac" --route "fd00:200:1::/64@0=$mac")
  for i in 1 2 3 4; do
    mac=$(dpdk_mac "$(topo_ns backend "$i")" eth0)
    routes+=(--route "$(topo_addr backend "$i" | sed 's/\.2$/.0/')/24@$i=$mac")
    routes+=(--route "$(topo_addr backend "$i" 6 | sed 's/::2$/::/')/64@$i=$mac")
  done
  if [[ $DPDK_VDEV == net_af_xdp ]]; then
    # AF_XDP takes every frame away from the node's kernel (af_packet only
    # copies them), so nobody answers ARP/ND for the node's addresses: the
    # client and backends get permanent neighbour entries for their gateway.
    ip -n "$(topo_ns client)" neigh replace "$(topo_addr node-client)" lladdr "$(dpdk_mac "$node" c0)" dev eth0 nud permanent
    ip -n "$(topo_ns client)" neigh replace "$(topo_addr node-client 6)" lladdr "$(dpdk_mac "$node" c0)" dev eth0 nud permanent
    for i in 1 2 3 4; do
      ip -n "$(topo_ns backend "$i")" neigh replace "$(topo_addr node-backend "$i")" lladdr "$(dpdk_mac "$node" "b$i")" \
        dev eth0 nud permanent
      ip -n "$(topo_ns backend "$i")" neigh replace "$(topo_addr node-backend "$i" 6)" lladdr "$(dpdk_mac "$node" "b$i")" \
        dev eth0 nud permanent
    done
  fi
  rm -f "$XDP_WORK/fwd-stats.json"
  nsenter --net="/run/netns/$node" timeout --signal=TERM --kill-after=5 "$seconds" \
    "$SLUICE_FWD" -l 0 --no-huge -m 512 --no-pci --no-telemetry --file-prefix "slc-dpdk-$$" --log-level=warning \
    "${vdevs[@]}" -- --pin-dir "$XDP_PIN" "${routes[@]}" --stats-file "$XDP_WORK/fwd-stats.json" \
    --idle-sleep-us "${DPDK_IDLE_SLEEP_US:-20}" >>"$XDP_WORK/fwd.log" 2>&1 &
  DPDK_FWD_PID=$!
  for i in $(seq 150); do
    [[ -s "$XDP_WORK/fwd-stats.json" ]] && return 0
    kill -0 "$DPDK_FWD_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: sluice-fwd did not start; its log:" >&2
  cat "$XDP_WORK/fwd.log" >&2
  exit 1
}

dpdk_stop_forwarder() {
  [[ -n "$DPDK_FWD_PID" ]] || return 0
  kill -TERM "$DPDK_FWD_PID" 2>/dev/null
  wait "$DPDK_FWD_PID" 2>/dev/null
  DPDK_FWD_PID=""
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

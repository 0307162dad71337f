#!/usr/bin/env bash
# Packets per second of 64-byte UDP frames through sluice-fwd (af_packet, or
# AF_XDP with DPDK_VDEV=net_af_xdp, vdevs) and through the XDP program
# (native, same veths), measured in one run on the same topology, plus the
# forwarder's cycles per packet, and the same forwarder again with its
# exception TAPs toggled (what polling idle TAPs costs).
#
#   tools/bench/dpdk_forwarder.sh [BUILD_DIR] [SECONDS]     # root; default build, 5 s
#
# Source: dpdk_frame_blaster in the client namespace (AF_PACKET, qdisc
# bypass, sendmmsg), 256 flows to VIP 10.96.0.10:9082/udp. Delivered rate:
# rx_packets of the four backends' eth0 over the window (no listener there,
# so no replies load the path). Each phase is bounded; nothing keeps running.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
seconds=${2:-5}
export XDP_HARNESS=$build/tests/integration/xdp_harness
export XDP_PASS_OBJ=$build/bpf/xdp_pass.bpf.o
export SLUICE_TEST_BACKEND=$build/tools/sluice-test-backend
export SLUICE_LOADGEN=$build/tools/sluice-loadgen
export SLUICE_FWD=$build/userspace/dpdk/sluice-fwd
blaster=$build/tools/dpdk_frame_blaster
# shellcheck source=../../tests/integration/dpdk_lib.sh
source "$root/tests/integration/dpdk_lib.sh"

topo_require_root
topo_require_cmd ip nsenter python3 ethtool
for b in "$XDP_HARNESS" "$XDP_PASS_OBJ" "$SLUICE_FWD" "$blaster"; do
  [[ -e $b ]] || { echo "missing $b: ninja -C $build sluice-fwd dpdk_frame_blaster xdp_harness"; exit 1; }
done
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
TOPO_LINK_HOOK=bench_link_hook
bench_link_hook() {   # no offloads (af_packet), XDP_PASS on peers (native redirect delivery)
  local ns=$1 ifname=$2 role=$3
  ip netns exec "$ns" ethtool -K "$ifname" tso off gso off gro off >/dev/null 2>&1
  case "$role" in
    client | backend) ip -n "$ns" link set dev "$ifname" xdpdrv obj "$XDP_PASS_OBJ" sec xdp ;;
  esac
}
topo_create "slcd-bench$$" 4 || exit 1
XDP_WORK=$(mktemp -d /tmp/slc-dpdk-bench.XXXXXX)
XDP_PIN="/sys/fs/bpf/slc-dpdk-bench-$$"
topo_on_cleanup "dpdk_teardown"
node=$(topo_ns node)
client=$(topo_ns client)
xdp_write_config ROUND_ROBIN 70 30
c0_mac=$(dpdk_mac "$node" c0)

backend_rx() {
  local i total=0 n
  for i in 1 2 3 4; do
    n=$(ip netns exec "$(topo_ns backend "$i")" cat /sys/class/net/eth0/statistics/rx_packets)
    total=$((total + n))
  done
  echo $total
}

measure() {   # prints "sent_pps delivered_pps"
  local before after sent
  before=$(backend_rx)
  sent=$(ip netns exec "$client" "$blaster" --iface eth0 --dst-mac "$c0_mac" --src 10.200.1.2 --dst 10.96.0.10 \
    --dport 9082 --flows 256 --seconds "$seconds" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sent"])')
  sleep 0.2
  after=$(backend_rx)
  python3 -c "print(f'{$sent/$seconds:.0f} {($after-$before)/$seconds:.0f}')"
}

# Phase 1: XDP native on the node's veths (forwarding on: bpf_fib_lookup needs it).
ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1
xdp_start_harness
# Resolve neighbours (the first frames would otherwise take the NO_NEIGH path).
# (icmp_echo.py: the host has no iputils-ping.)
for i in 1 2 3 4; do
  ip netns exec "$node" python3 "$root/tests/integration/icmp_echo.py" "$(topo_addr backend "$i")" 1 1 >/dev/null 2>&1
done
read -r xdp_sent xdp_pps < <(measure)
xdp_stop_harness
"$XDP_HARNESS" --pin-dir "$XDP_PIN" --iface c0 --iface b1 --iface b2 --iface b3 --iface b4 --detach \
  >>"$XDP_WORK/harness.log" 2>&1 || nsenter --net="/run/netns/$node" "$XDP_HARNESS" --pin-dir "$XDP_PIN" \
  --iface c0 --iface b1 --iface b2 --iface b3 --iface b4 --detach >>"$XDP_WORK/harness.log" 2>&1

# Phase 2: sluice-fwd on af_packet vdevs, one lcore, kernel forwarding off.
ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
dpdk_start_tables
export DPDK_IDLE_SLEEP_US=0   # busy polling: measure the real thing
dpdk_start_forwarder $((seconds + 20))
read -r fwd_sent fwd_pps < <(measure)
sleep 1.2
cpp=$(xdp_json "$XDP_WORK/fwd-stats.json" 'round(j["cycles_per_packet"])')
tsc=$(xdp_json "$XDP_WORK/fwd-stats.json" 'j["tsc_hz"]')
dpdk_stop_forwarder
fwd_label="sluice-fwd $DPDK_VDEV (1 lcore)"
((DPDK_EXCEPTION_TAPS)) && fwd_label="$fwd_label + TAPs"

# Phase 3: the same forwarder with exception TAPs toggled (net_af_xdp has
# them by default, net_af_packet not). Every frame is steered, so the TAPs
# carry nothing: the difference prices polling them (one readv() per TAP per
# poll round) on a busy-polling lcore.
DPDK_EXCEPTION_TAPS=$((1 - DPDK_EXCEPTION_TAPS))
dpdk_start_forwarder $((seconds + 20))
read -r alt_sent alt_pps < <(measure)
sleep 1.2
alt_cpp=$(xdp_json "$XDP_WORK/fwd-stats.json" 'round(j["cycles_per_packet"])')
dpdk_stop_forwarder
alt_label="sluice-fwd $DPDK_VDEV (1 lcore)"
((DPDK_EXCEPTION_TAPS)) && alt_label="$alt_label + TAPs"

echo "64-byte UDP frames, 256 flows, ${seconds} s per phase, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-42s %12s %14s\n' path offered_pps delivered_pps
printf '%-42s %12s %14s\n' "XDP native (veth)" "$xdp_sent" "$xdp_pps"
printf '%-42s %12s %14s\n' "$fwd_label" "$fwd_sent" "$fwd_pps"
printf '%-42s %12s %14s\n' "$alt_label" "$alt_sent" "$alt_pps"
python3 -c "print(f'forwarder / XDP delivered: {$fwd_pps/max(1,$xdp_pps):.2f}')"
if ((DPDK_EXCEPTION_TAPS)); then with_taps=$alt_pps without_taps=$fwd_pps; else with_taps=$fwd_pps without_taps=$alt_pps; fi
python3 -c "print(f'with TAPs / without, delivered: {$with_taps/max(1,$without_taps):.2f}')"
echo "forwarder cycles per packet (busy bursts, RX to TX): $cpp ($fwd_label), $alt_cpp ($alt_label) at TSC $tsc Hz"

#!/usr/bin/env bash
# The 70/30 split for IPv6 TCP (VIP [fd00:96::10]:9081), IPv4 UDP and IPv6
# UDP (port 9082, every datagram from a fresh socket = a new flow), 10,000
# flows each. Tolerance as in xdp_split: binomial sd 0.46 points at n =
# 10,000, +-1.5 points is > 3 sd. Every flow must be answered by a backend
# of the VIP's own family (reverse NAT and checksums work for both).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=xdp_lib.sh
source "$here/xdp_lib.sh"

xdp_setup v6udp
xdp_write_config ROUND_ROBIN 70 30
xdp_start_harness

n=10000
split_check() {   # split_check LABEL FILE
  local label=$1 file=$2 ok v1 errors
  read -r ok v1 errors < <(xdp_json "$file" \
    'str(sum(j["backends"].values())) + " " + str(sum(n for b, n in j["backends"].items() if b.startswith("productpage-v1"))) + " " + str(sum(j["errors"].values()))')
  echo "$label: answered=$ok v1=$v1 errors=$errors"
  xdp_check "$label: all $n flows answered" test "$ok" -eq $n
  xdp_check "$label: v1 share within 70 +- 1.5 points" python3 -c "import sys; sys.exit(abs(100*$v1/max(1,$ok)-70) > 1.5)"
}
xdp_loadgen "$XDP_WORK/tcp6.json" tcp --connect "[fd00:96::10]:9081" --count $n --concurrency 32 --timeout-s 60
split_check "IPv6 TCP" "$XDP_WORK/tcp6.json"
xdp_loadgen "$XDP_WORK/udp4.json" udp --connect 10.96.0.10:9082 --count $n --concurrency 32 --timeout-s 60
split_check "IPv4 UDP" "$XDP_WORK/udp4.json"
xdp_loadgen "$XDP_WORK/udp6.json" udp --connect "[fd00:96::10]:9082" --count $n --concurrency 32 --timeout-s 60
split_check "IPv6 UDP" "$XDP_WORK/udp6.json"

xdp_stats
read -r v6flows csum < <(xdp_json "$XDP_WORK/stats.json" \
  'str(sum(s["new_flows"] for s in j["subsets"] if "IPv6" in s["subset"])) + " " + str(j["global"]["csum_full"])')
# >= n, not 2n: a UDP socket that re-uses a source port within the idle
# timeout is, correctly, the same tracked flow.
xdp_check "IPv6 subsets counted the IPv6 flows ($v6flows >= $n)" test "$v6flows" -ge $n
echo "partial checksums completed by the program: $csum"
xdp_finish

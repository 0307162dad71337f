#!/usr/bin/env bash
# 10,000 new TCP connections to productpage VIP 10.96.0.10:9081 split 70/30
# between subsets v1 and v2 by the XDP program, ROUND_ROBIN inside each
# subset, with no connection failing. Tolerances: v1's share is binomial,
# sd = sqrt(.7*.3/10000) = 0.46 points, so +-1.5 points is > 3 sd; round
# robin with an atomic cursor alternates exactly, so the two backends of a
# subset differ by at most one connection per CPU that steered new flows.
# XDP_MODE=generic runs the same test in generic (skb) mode.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=xdp_lib.sh
source "$here/xdp_lib.sh"

xdp_setup split
xdp_write_config ROUND_ROBIN 70 30
xdp_start_harness
echo "attach: $(xdp_json "$XDP_WORK/status.json" '", ".join(i["name"]+"="+i["mode"] for i in j["interfaces"])')"

n=10000
xdp_loadgen "$XDP_WORK/tcp.json" tcp --connect 10.96.0.10:9081 --count $n --concurrency 32 --timeout-s 60
read -r v1a v1b v2a v2b ok errors < <(xdp_json "$XDP_WORK/tcp.json" \
  '" ".join(str(j["backends"].get(b,0)) for b in ["productpage-v1-a","productpage-v1-b","productpage-v2-a","productpage-v2-b"]) + " " + str(sum(j["backends"].values())) + " " + str(sum(j["errors"].values()))')
echo "tcp: v1-a=$v1a v1-b=$v1b v2-a=$v2a v2-b=$v2b answered=$ok errors=$errors"
xdp_check "all $n connections answered" test "$ok" -eq $n
xdp_check "no connection errors" test "$errors" -eq 0
v1_share=$(python3 -c "print(100*($v1a+$v1b)/max(1,$ok))")
xdp_check "v1 share $v1_share% within 70 +- 1.5" python3 -c "import sys; sys.exit(abs($v1_share-70) > 1.5)"
xdp_check "round robin even inside v1 (|$v1a-$v1b| <= 2)" python3 -c "import sys; sys.exit(abs($v1a-$v1b) > 2)"
xdp_check "round robin even inside v2 (|$v2a-$v2b| <= 2)" python3 -c "import sys; sys.exit(abs($v2a-$v2b) > 2)"

# Checksums after NAT (docs/bpf-datapath.md, "Checksums after NAT": trust the receivers' counters, not tcpdump).
csum_errors=0
for ns in "$(topo_ns client)" $(for i in 1 2 3 4; do topo_ns backend "$i"; done); do
  e=$(ip netns exec "$ns" nstat -azs TcpInCsumErrors | awk '$1=="TcpInCsumErrors"{print $2}')
  csum_errors=$((csum_errors + ${e:-0}))
done
xdp_check "no TCP checksum errors at the client or the backends ($csum_errors)" test "$csum_errors" -eq 0

xdp_stats
new_flows=$(xdp_json "$XDP_WORK/stats.json" 'sum(s["new_flows"] for s in j["services"] if s["port"]==9081)')
xdp_check "XDP counted $new_flows new flows for port 9081 (>= $n)" test "$new_flows" -ge $n
xdp_check "reverse NAT ran" test "$(xdp_json "$XDP_WORK/stats.json" 'j["global"]["reverse_nat"]')" -gt 0
xdp_finish

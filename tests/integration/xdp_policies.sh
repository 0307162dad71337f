#!/usr/bin/env bash
# Each load-balancing policy inside a subset, through the XDP program, one
# topology, the policy changed by re-applying the config (route 100/0 so
# every connection lands in v1 = productpage-v1-a, productpage-v1-b):
#   RANDOM         both backends used, each 50% +- 7.5 points of 1,000
#                  (binomial sd 1.6 points: > 4.5 sd);
#   LEAST_REQUEST  with v1-a's load counter raised to 1000 in the shared
#                  map, all 300 new connections go to v1-b (P2C over two
#                  members compares both, so this is exact);
#   consistentHash useSourceIp: every connection from one source lands on
#                  one backend, for 16 sources, which together use both;
#   PASSTHROUGH    connections reach the backend chosen by an iptables DNAT
#                  rule the test sets, and sluice counts them as passthrough;
#                  also the 20 that re-use the 4-tuples of flows sluice still
#                  tracks as closing (steered round robin to v2-a and v2-b,
#                  ended by a RST < 10 s before): none of their packets may
#                  follow the old entry to the old backend, and no reply of
#                  theirs from v2-b may be rewritten by the old flow's
#                  reverse entry behind the kernel's NAT.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=xdp_lib.sh
source "$here/xdp_lib.sh"
topo_require_cmd iptables bpftool

xdp_setup policy
xdp_write_config RANDOM 100 0
xdp_start_harness
client=$(topo_ns client)

tally() {   # tally FILE -> "v1a v1b v2a v2b errors"
  xdp_json "$1" '" ".join(str(j["backends"].get(b,0)) for b in ["productpage-v1-a","productpage-v1-b","productpage-v2-a","productpage-v2-b"]) + " " + str(sum(j["errors"].values()))'
}

# RANDOM
xdp_loadgen "$XDP_WORK/random.json" tcp --connect 10.96.0.10:9081 --count 1000 --concurrency 16 --timeout-s 30
read -r a b c d err < <(tally "$XDP_WORK/random.json")
echo "RANDOM: v1-a=$a v1-b=$b v2=$((c + d)) errors=$err"
xdp_check "RANDOM: no errors, nothing outside v1" test $((err + c + d)) -eq 0
xdp_check "RANDOM: v1-a share $a/1000 within 50 +- 7.5 points" test "$a" -ge 425 -a "$a" -le 575

# LEAST_REQUEST: raise productpage-v1-a's l7_active (the L7 agent's figure)
xdp_write_config LEAST_REQUEST 100 0
xdp_reapply
xdp_stats
id=$(xdp_json "$XDP_WORK/stats.json" '[b["id"] for b in j["backends"] if b["address"]=="10.200.11.2:9081/tcp"][0]')
# value: l7_active, l4_opened, l4_closed, pad (u64 each, little endian);
# keep the L4 counters, set l7_active = 1000.
value=$(bpftool -j map lookup pinned "$XDP_PIN/sluice_backend_load" key $id 0 0 0 |
  python3 -c 'import json,sys; v=[int(x,16) for x in json.load(sys.stdin)["value"]]; v[0:8]=list((1000).to_bytes(8,"little")); print(" ".join(str(x) for x in v))')
bpftool map update pinned "$XDP_PIN/sluice_backend_load" key $id 0 0 0 value $value
xdp_loadgen "$XDP_WORK/lr.json" tcp --connect 10.96.0.10:9081 --count 300 --concurrency 8 --timeout-s 30
read -r a b c d err < <(tally "$XDP_WORK/lr.json")
echo "LEAST_REQUEST (v1-a loaded): v1-a=$a v1-b=$b errors=$err"
xdp_check "LEAST_REQUEST: all 300 to the unloaded v1-b" test "$b" -eq 300

# consistentHash on the source IP, two sources
xdp_write_config consistentHash 100 0
xdp_reapply
used=""
for host in $(seq 3 18); do
  src=10.200.1.$host
  ip -n "$client" addr add "$src/24" dev eth0
  xdp_loadgen "$XDP_WORK/ch.json" tcp --connect 10.96.0.10:9081 --source "$src" --count 25 --concurrency 5 --timeout-s 30
  read -r a b c d err < <(tally "$XDP_WORK/ch.json")
  xdp_check "consistentHash: all 25 connections from $src on one backend (v1-a=$a v1-b=$b)" \
    test "$a" -eq 25 -o "$b" -eq 25
  used+="$([[ $a -eq 25 ]] && echo a || echo b)"
done
# 16 sources over two equal backends: all on one has p = 2^-15.
xdp_check "consistentHash: the 16 sources use both backends ($used)" \
  test "${used//a/}" != "" -a "${used//b/}" != ""

# PASSTHROUGH: the kernel's DNAT decides (kube-proxy's iptables mode).
# First 20 flows from fixed ports, steered by sluice to v2 (ROUND_ROBIN over
# v2-a and v2-b, the DNAT target) and reset, so that their tuples are tracked
# as closing when the same tuples open again below.
xdp_write_config ROUND_ROBIN 0 100
xdp_reapply
xdp_reuse_open "$XDP_WORK/reuse-open.json"
read -r old_a old_b < <(xdp_json "$XDP_WORK/reuse-open.json" \
  'str(j["backends"].get("productpage-v2-a", 0)) + " " + str(j["backends"].get("productpage-v2-b", 0))')
xdp_check "PASSTHROUGH: before, 20 flows steered to both v2-a ($old_a) and v2-b ($old_b)" \
  test $((old_a + old_b)) -eq 20 -a "$old_a" -gt 0 -a "$old_b" -gt 0
xdp_write_config PASSTHROUGH 100 0
xdp_reapply
xdp_stats
before=$(xdp_json "$XDP_WORK/stats.json" 'j["global"]["pass_passthrough"]')
xdp_dnat_vip_to_v2b
xdp_reuse_check "$XDP_WORK/reuse-open.json" "$XDP_WORK/reuse-check.json"
xdp_loadgen "$XDP_WORK/pt.json" tcp --connect 10.96.0.10:9081 --count 200 --concurrency 8 --timeout-s 30
read -r a b c d err < <(tally "$XDP_WORK/pt.json")
xdp_stats
after=$(xdp_json "$XDP_WORK/stats.json" 'j["global"]["pass_passthrough"]')
subset_pt=$(xdp_json "$XDP_WORK/stats.json" 'sum(s["passthrough"] for s in j["subsets"] if s["port"]==9081)')
echo "PASSTHROUGH: v2-b (iptables target)=$d others=$((a + b + c)) errors=$err $(xdp_json "$XDP_WORK/pt.json" 'json.dumps(j["errors"])') passthrough packets +$((after - before)) (subsets $subset_pt)"
xdp_check "PASSTHROUGH: all 200 reach the iptables DNAT target" test "$d" -eq 200
xdp_check "PASSTHROUGH: sluice counted >= 200 passthrough packets" test $((after - before)) -ge 200
xdp_finish

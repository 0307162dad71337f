#!/usr/bin/env bash
# A node built as users build it: nothing on the veth peers (no XDP program,
# no GRO). A native XDP_REDIRECT into such a veth is dropped by the kernel
# after the redirect "succeeded", so before sluice checked its targets every
# connection to an L4 VIP timed out with nothing said anywhere. Now every
# connection must be answered (the rewritten packets go through the kernel),
# `sluicectl status` must say why, the metrics must count it, and once the
# operator attaches an XDP program to a peer sluice must find out (bounded
# re-check) and redirect into it natively.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

agent_setup bare
agent_write_routing "name: primary" v1 50 50
agent_start
vip=10.96.0.10
events() {   # events NAME: sluice_xdp_events_total{event="NAME"}
  agent_curl "http://$AGENT_ADMIN/stats/prometheus" |
    awk -v e="sluice_xdp_events_total{event=\"$1\"}" '$1 == e {print $2; found=1} END {if (!found) print 0}'
}
answered() { agent_json "$1" 'sum(j["backends"].values())'; }

out=$(agent_loadgen tcp --connect "$vip:9081" --count 200 --concurrency 10 --timeout-s 30)
agent_check "200 of 200 connections to the L4 VIP answered with bare peers ($(answered "$out"))" \
  test "$(answered "$out")" -eq 200
agent_check "the rewritten packets went through the kernel (pass_no_redirect $(events pass_no_redirect))" \
  test "$(events pass_no_redirect)" -gt 0
agent_check "nothing was redirected natively into a bare veth (redirect $(events redirect))" \
  test "$(events redirect)" -eq 0
agent_check "no redirect failed in the kernel (redirect_err $(events redirect_err))" test "$(events redirect_err)" -eq 0
status=$(agent_ctl status)
echo "$status" | grep warning
agent_check "sluicectl status warns about c0" grep -q "warning .*packets steered to c0 go through the kernel" <<<"$status"
agent_check "sluicectl status warns about b1" grep -q "warning .*packets steered to b1 go through the kernel" <<<"$status"
agent_check "the log says so" grep -q "native redirects into .*c0.* would be dropped" "$AGENT_WORK/sluiced.log"

# The operator fixes the client's side: an XDP program on its peer. Within
# the re-check period (5 s) sluice redirects into c0 natively.
ip -n "$(topo_ns client)" link set dev eth0 xdpdrv obj "$XDP_PASS_OBJ" sec xdp
native=no
for _ in $(seq 80); do
  if agent_json "$(agent_status)" '"c0" in j["xdp_redirect"]["native"]' | grep -q True; then native=yes; break; fi
  sleep 0.1
done
agent_check "status lists c0 as taking native redirects after its peer got XDP" test "$native" = yes
before=$(events redirect)
out=$(agent_loadgen tcp --connect "$vip:9081" --count 100 --concurrency 10 --timeout-s 30)
agent_check "100 of 100 connections answered after the change ($(answered "$out"))" test "$(answered "$out")" -eq 100
agent_check "replies toward the client are redirected natively now ($before -> $(events redirect))" \
  test "$(events redirect)" -gt "$before"
agent_finish

#!/usr/bin/env bash
# L7 over IPv6: a ServiceEntry with an IPv4 and an IPv6 VIP. Requests to
# [fd00:96::10]:9080 pass XDP to the stack, the sk_lookup program hands them
# to the agent's IPv6 listener (a socket of the lookup's family; the IPv4
# listener cannot take them), and the proxy routes them per request like the
# IPv4 ones: 400 keep-alive requests split 70/30 on each family.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

agent_setup ipv6l7
sed -i 's/addresses: \[10.96.0.10\]/addresses: [10.96.0.10, "fd00:96::10"]/' "$AGENT_WORK/config/serviceentry.yaml"
grep -q 'fd00:96::10' "$AGENT_WORK/config/serviceentry.yaml" || { echo "FAIL: could not add the IPv6 VIP"; exit 1; }
agent_write_routing "name: primary" v1 70 30
agent_start
client=$(topo_ns client)

agent_check "sluiced listens for IPv6 L7 traffic" grep -q "L7 listeners 127.0.0.1:15001 and \[::1\]:15001" \
  "$AGENT_WORK/sluiced.log"
out=$(topo_exec "$client" curl -sg -m 5 -o /dev/null -w "%{http_code} %{remote_ip}" "http://[fd00:96::10]:9080/")
agent_check "curl to [fd00:96::10]:9080 gets 200 from the VIP ($out)" test "$out" = "200 fd00:96::10"

# 400 requests per family at n=400: 4.5 sigma = 10.3 points (agent_share_ok).
for url in "http://10.96.0.10:9080/" "http://[fd00:96::10]:9080/"; do
  l7=$(agent_loadgen http --url "$url" --count 400 --concurrency 4 --keepalive --timeout-s 30)
  errors=$(agent_json "$l7" 'sum(j["errors"].values())')
  agent_check "$url: 400 requests, no errors ($errors)" test "$errors" -eq 0
  agent_check "$url: v1 share follows 70/30" agent_share_ok "$l7" 70
done
agent_finish

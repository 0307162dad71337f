#!/usr/bin/env bash
# The shared topology works end to end: every backend namespace runs a
# sluice-test-backend, and from the node namespace each answers on its own
# v4 and v6 address with its own name (HTTP and the TCP greeting).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/topology.sh
source "$here/lib/topology.sh"
backend_bin=${SLUICE_TEST_BACKEND:?set SLUICE_TEST_BACKEND to the sluice-test-backend binary}

topo_require_root
topo_require_cmd ip curl
topo_create "slc-lb-smoke$$" 4 || { echo "FAIL: topology setup"; exit 1; }
node=$(topo_ns node)

for i in 1 2 3 4; do
  topo_spawn "$(topo_ns backend "$i")" "$backend_bin" --name "be$i" --http 9080 --tcp 9081
done
for i in 1 2 3 4; do
  topo_wait_port "$node" "$(topo_addr backend "$i")" 9080 || exit 1
done

failures=0
check() {   # check WHAT EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then
    echo "PASS: $1"
  else
    echo "FAIL: $1: expected '$2', got '$3'"
    failures=$((failures + 1))
  fi
}
for i in 1 2 3 4; do
  v4=$(topo_addr backend "$i")
  v6=$(topo_addr backend "$i" 6)
  check "http v4 $v4 header" "be$i" \
    "$(topo_exec "$node" curl -s -m 3 -o /dev/null -w '%header{x-backend}' "http://$v4:9080/")"
  check "http v6 [$v6] body" "be$i" "$(topo_exec "$node" curl -s -m 3 "http://[$v6]:9080/")"
  check "tcp v4 $v4 greeting" "be$i" \
    "$(topo_exec "$node" timeout 3 bash -c "exec 3<>/dev/tcp/$v4/9081; head -n1 <&3")"
done
# The client reaches backends through the node (routing and forwarding on, both families).
check "client -> be1 via node (v4)" "be1" \
  "$(topo_exec "$(topo_ns client)" curl -s -m 3 "http://$(topo_addr backend 1):9080/")"
check "client -> be4 via node (v6)" "be4" \
  "$(topo_exec "$(topo_ns client)" curl -s -m 3 "http://[$(topo_addr backend 4 6)]:9080/")"
# Backends see the client's own address (no NAT in the bare topology).
check "be2 sees the client's address" "$(topo_addr client)" \
  "$(topo_exec "$(topo_ns client)" curl -s -m 3 "http://$(topo_addr backend 2):9080/echo" |
     python3 -c 'import json,sys; print(json.load(sys.stdin)["peer"].rsplit(":",1)[0])')"

((failures == 0)) || exit 1

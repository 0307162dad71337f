# shellcheck shell=bash
# Shared setup of the xdp_* integration tests: the team topology with the XDP
# steering program on the node's veths (c0 toward the client, b1..b4 toward
# the backends), sluice-test-backend in each backend namespace, and
# xdp_harness driving the tables from a generated Istio config directory.
# The peers get nothing (no XDP program, GRO as the kernel left it), as on a
# user's node: the datapath finds out which veths take native redirects and
# hands the others' packets to the kernel (docs/bpf-datapath.md).
#
# Backends: be1 productpage-v1-a, be2 productpage-v1-b, be3 productpage-v2-a,
# be4 productpage-v2-b; TCP greeting+echo on 9081, UDP on 9082, v4 and v6.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/topology.sh
source "$here/lib/topology.sh"

: "${XDP_HARNESS:?set XDP_HARNESS to the xdp_harness binary}"
: "${SLUICE_TEST_BACKEND:?set SLUICE_TEST_BACKEND to sluice-test-backend}"
: "${SLUICE_LOADGEN:?set SLUICE_LOADGEN to sluice-loadgen}"

XDP_BACKEND_NAMES=(productpage-v1-a productpage-v1-b productpage-v2-a productpage-v2-b)
XDP_WORK=""
XDP_PIN=""
XDP_HARNESS_PID=""
XDP_MODE="${XDP_MODE:-auto}"
xdp_failures=0

xdp_check() {   # xdp_check DESCRIPTION COMMAND...  (PASS/FAIL line, counts failures)
  local what=$1
  shift
  if "$@"; then
    echo "PASS: $what"
  else
    echo "FAIL: $what"
    xdp_failures=$((xdp_failures + 1))
  fi
}

# xdp_setup NAME: topology, backends, work dir, pin dir.
xdp_setup() {
  local name=$1
  topo_require_root
  topo_require_cmd ip nsenter python3
  [[ -d /sys/fs/bpf ]] && { mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; }
  topo_create "slcb-$name$$" 4 || { echo "FAIL: topology setup"; exit 1; }
  XDP_WORK=$(mktemp -d "/tmp/slc-bpf-$name.XXXXXX")
  XDP_PIN="/sys/fs/bpf/slc-bpf-$name-$$"
  topo_on_cleanup "xdp_teardown"
  xdp_start_backends 6
  # Resolve the client's neighbour entry on the node too (a refused connect
  # is enough): first packets then skip the NO_NEIGH path, which works
  # through the kernel but is slower.
  topo_exec "$(topo_ns node)" timeout 2 bash -c "exec 3<>/dev/tcp/$(topo_addr client)/9" 2>/dev/null
  topo_exec "$(topo_ns node)" timeout 2 bash -c "exec 3<>/dev/tcp/$(topo_addr client 6)/9" 2>/dev/null
  return 0
}

# xdp_start_backends [6]: sluice-test-backend in each backend namespace (TCP
# greeting+echo on 9081, UDP on 9082), waited for on IPv4 (and IPv6 with 6).
xdp_start_backends() {
  local i
  for i in 1 2 3 4; do
    topo_spawn "$(topo_ns backend "$i")" "$SLUICE_TEST_BACKEND" --name "${XDP_BACKEND_NAMES[$((i - 1))]}" \
      --tcp 9081 --udp 9082
  done
  for i in 1 2 3 4; do
    topo_wait_port "$(topo_ns node)" "$(topo_addr backend "$i")" 9081 || exit 1
    [[ ${1:-} == 6 ]] && { topo_wait_port "$(topo_ns node)" "$(topo_addr backend "$i" 6)" 9081 || exit 1; }
  done
  return 0
}

xdp_teardown() {
  xdp_stop_harness
  [[ -n "$XDP_PIN" && -d "$XDP_PIN" ]] && rm -rf -- "$XDP_PIN"
  [[ -n "$XDP_WORK" && -d "$XDP_WORK" ]] && rm -rf -- "$XDP_WORK"
  return 0
}

# xdp_write_config POLICY W1 W2 [LB_EXTRA_YAML]: productpage with v4 and v6
# VIPs and WorkloadEntries, the route split W1/W2, POLICY inside subsets
# (ROUND_ROBIN, RANDOM, LEAST_REQUEST, PASSTHROUGH, or "consistentHash").
xdp_write_config() {
  local policy=$1 w1=$2 w2=$3 lb i v
  local dir="$XDP_WORK/config"
  mkdir -p "$dir"
  if [[ $policy == consistentHash ]]; then
    lb="{consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}}"
  else
    lb="{simple: $policy}"
  fi
  cat >"$dir/serviceentry.yaml" <<YAML
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  addresses: [10.96.0.10, "fd00:96::10"]
  ports:
  - {number: 9081, name: tcp, protocol: TCP}
  - {number: 9082, name: udp, protocol: UDP}
  resolution: STATIC
  workloadSelector:
    labels: {app: productpage}
YAML
  : >"$dir/workloadentries.yaml"
  for i in 1 2 3 4; do
    v=$([[ $i -le 2 ]] && echo v1 || echo v2)
    cat >>"$dir/workloadentries.yaml" <<YAML
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: ${XDP_BACKEND_NAMES[$((i - 1))]}, namespace: default}
spec:
  address: $(topo_addr backend "$i")
  labels: {app: productpage, version: $v}
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: ${XDP_BACKEND_NAMES[$((i - 1))]}-v6, namespace: default}
spec:
  address: "$(topo_addr backend "$i" 6)"
  labels: {app: productpage, version: $v}
YAML
  done
  cat >"$dir/routing.yaml.tmp" <<YAML
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  tcp:
  - route:
    - destination: {host: productpage, subset: v1}
      weight: $w1
    - destination: {host: productpage, subset: v2}
      weight: $w2
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: productpage, namespace: default}
spec:
  host: productpage
  trafficPolicy:
    loadBalancer: $lb
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
  mv "$dir/routing.yaml.tmp" "$dir/routing.yaml"
}

# xdp_subset_counts FILE: "V1 V2", the connections the loadgen's compact JSON
# counts per subset (awk, not a python start per change: each costs up to a
# second on a busy 2-core runner).
xdp_subset_counts() {
  awk '{
    b = $0
    if (!sub(/.*"backends":\{/, "", b)) b = ""
    sub(/\}.*/, "", b)
    v1 = 0; v2 = 0
    n = split(b, e, ",")
    for (i = 1; i <= n; i++) {
      if (split(e[i], kv, ":") != 2) continue
      if (kv[1] ~ /^"productpage-v1/) v1 += kv[2]
      else if (kv[1] ~ /^"productpage-v2/) v2 += kv[2]
    }
    print v1, v2
  }' "$1"
}

xdp_json() {   # xdp_json FILE PYTHON_EXPR (j is the parsed JSON)
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}

# Starts the harness in the node namespace. nsenter, not `ip netns exec`:
# the latter remounts /sys and hides /sys/fs/bpf.
xdp_start_harness() {
  local node i ifaces=(--iface c0)
  node=$(topo_ns node)
  for i in 1 2 3 4; do ifaces+=(--iface "b$i"); done
  rm -f "$XDP_WORK/status.json"
  nsenter --net="/run/netns/$node" "$XDP_HARNESS" --config-dir "$XDP_WORK/config" --pin-dir "$XDP_PIN" \
    "${ifaces[@]}" --mode "$XDP_MODE" --status-file "$XDP_WORK/status.json" --stats-file "$XDP_WORK/stats.json" \
    "$@" >>"$XDP_WORK/harness.log" 2>&1 &
  XDP_HARNESS_PID=$!
  for i in $(seq 100); do
    if [[ -f "$XDP_WORK/status.json" ]] && [[ $(xdp_json "$XDP_WORK/status.json" 'len(j["interfaces"])') == 5 ]]; then
      return 0
    fi
    kill -0 "$XDP_HARNESS_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: xdp_harness did not start; its log:" >&2
  cat "$XDP_WORK/harness.log" >&2
  exit 1
}

xdp_stop_harness() {
  [[ -n "$XDP_HARNESS_PID" ]] || return 0
  kill -TERM "$XDP_HARNESS_PID" 2>/dev/null
  wait "$XDP_HARNESS_PID" 2>/dev/null
  XDP_HARNESS_PID=""
}

xdp_applies() { grep -o '"applies":[0-9]*' "$XDP_WORK/status.json" 2>/dev/null | cut -d: -f2; }

xdp_reapply() {   # re-reads the config dir; waits until applied
  local before after i
  before=$(xdp_applies)
  kill -HUP "$XDP_HARNESS_PID"
  for i in $(seq 200); do
    after=$(xdp_applies)
    [[ -n "$after" && "$after" -gt "$before" ]] && return 0
    sleep 0.02
  done
  echo "FAIL: xdp_harness did not apply within 4 s" >&2
  return 1
}

xdp_stats() {   # writes $XDP_WORK/stats.json, fresh
  local i
  rm -f "$XDP_WORK/stats.json"
  kill -USR1 "$XDP_HARNESS_PID"
  for i in $(seq 100); do
    [[ -s "$XDP_WORK/stats.json" ]] && return 0
    sleep 0.05
  done
  return 1
}

xdp_loadgen() {   # xdp_loadgen OUT_JSON ARGS... (runs in the client namespace)
  local out=$1
  shift
  topo_exec "$(topo_ns client)" "$SLUICE_LOADGEN" "$@" >"$out"
}

# Tuples re-used across a policy change (xdp_port_reuse.py), from the
# client's 10.200.1.2 to productpage 10.96.0.10:9081:
#   xdp_reuse_open OUT           20 connections from chosen source ports,
#                                each ended by a RST (the client keeps no
#                                TIME_WAIT, sluice tracks them as closing);
#   xdp_reuse_check OPENED OUT [TIMEOUT_S]  the same tuples again, greeting
#                                and echo; checks that all 20 reach v2-b.
# Each prints its JSON summary.
xdp_reuse_open() {
  topo_exec "$(topo_ns client)" python3 "$here/xdp_port_reuse.py" open 10.96.0.10 9081 10.200.1.2 20000 20 >"$1"
  xdp_json "$1" '"re-use: first flows: " + json.dumps(j)'
}
xdp_reuse_check() {
  topo_exec "$(topo_ns client)" python3 "$here/xdp_port_reuse.py" check 10.96.0.10 9081 10.200.1.2 "$1" "${3:-3}" >"$2"
  xdp_json "$2" '"re-use: the same tuples again: " + json.dumps(j)'
  xdp_check "PASSTHROUGH: all 20 flows on re-used tuples reach the DNAT target v2-b and echo" \
    test "$(xdp_json "$2" 'j["backends"].get("productpage-v2-b", 0)')" -eq 20
}

# kube-proxy's iptables mode for productpage's VIP port: DNAT to v2-b.
xdp_dnat_vip_to_v2b() {
  ip netns exec "$(topo_ns node)" iptables -t nat -A PREROUTING -d 10.96.0.10 -p tcp --dport 9081 \
    -j DNAT --to-destination 10.200.14.2:9081
}

# Long-lived connections from the client (sluice-loadgen hold), reported on
# demand: the hold lasts up to 180 s and xdp_hold_report ends it, so the
# scenario in between may take as long as a loaded machine needs.
XDP_HOLD_PID=""
xdp_hold_start() {   # xdp_hold_start CONNECTIONS INTERVAL_MS
  ip netns exec "$(topo_ns client)" "$SLUICE_LOADGEN" hold --connect 10.96.0.10:9081 --connections "$1" \
    --duration-s 180 --interval-ms "$2" --timeout-s 190 >"$XDP_WORK/hold.json" 2>"$XDP_WORK/hold.err" &
  XDP_HOLD_PID=$!
  topo_on_cleanup "kill $XDP_HOLD_PID 2>/dev/null"
}

xdp_hold_report() {   # prints "connections resets changed_backend echo_timeouts", ends the hold
  local i
  kill -USR1 "$XDP_HOLD_PID"
  for i in $(seq 100); do
    [[ -s "$XDP_WORK/hold.json" ]] && break
    sleep 0.05
  done
  sleep 0.2
  kill "$XDP_HOLD_PID" 2>/dev/null
  wait "$XDP_HOLD_PID" 2>/dev/null
  python3 -c '
import json, sys
j, _ = json.JSONDecoder().raw_decode(open(sys.argv[1]).read().lstrip())
print(" ".join(str(j["summary"][k]) for k in ["connections", "resets", "changed_backend", "echo_timeouts"]))
' "$XDP_WORK/hold.json"
}

xdp_finish() {
  if ((xdp_failures > 0)); then
    echo "--- harness log ---"
    tail -20 "$XDP_WORK/harness.log"
    exit 1
  fi
  exit 0
}

# shellcheck shell=bash
# Shared setup of the agent_* integration tests: the team topology with
# sluiced in the node namespace (XDP on c0 and b1..b4, the L7 proxy behind
# sk_lookup), and sluice-test-backend in each backend namespace serving HTTP
# on 9080 and the TCP greeting on 9081. The peers get nothing (no XDP
# program, no GRO), as on a user's node: sluiced finds out which veths take
# native redirects and says so in status (docs/bpf-datapath.md).
#
# The productpage config (tests write it with agent_write_routing): port 9080
# HTTP (L7 plane), port 9081 TCP (L4 plane: the http route applies per
# connection), subsets v1 (productpage-v1-a/b) and v2 (productpage-v2-a/b).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/topology.sh
source "$here/lib/topology.sh"

: "${SLUICED:?set SLUICED to the sluiced binary}"
: "${SLUICECTL:?set SLUICECTL to the sluicectl binary}"
: "${XDP_PASS_OBJ:?set XDP_PASS_OBJ to xdp_pass.bpf.o}"
: "${SLUICE_TEST_BACKEND:?set SLUICE_TEST_BACKEND to sluice-test-backend}"
: "${SLUICE_LOADGEN:?set SLUICE_LOADGEN to sluice-loadgen}"

AGENT_BACKENDS=(productpage-v1-a productpage-v1-b productpage-v2-a productpage-v2-b)
AGENT_WORK=""
AGENT_PIN=""
AGENT_PID=""
AGENT_ADMIN=127.0.0.1:15000
AGENT_SOCKET=""   # the admin Unix socket (POST /weights), in AGENT_WORK: Unix socket paths are not per namespace
agent_failures=0

agent_check() {   # agent_check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then
    echo "PASS: $what"
  else
    echo "FAIL: $what"
    agent_failures=$((agent_failures + 1))
  fi
}

agent_setup() {   # agent_setup NAME [BACKEND ARGS...]
  local name=$1 i ns
  shift
  topo_require_root
  topo_require_cmd ip nsenter python3 curl
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
  topo_create "slca-$name$$" 4 || { echo "FAIL: topology setup"; exit 1; }
  AGENT_WORK=$(mktemp -d "/tmp/slc-agent-$name.XXXXXX")
  AGENT_PIN="/sys/fs/bpf/slc-agent-$name-$$"
  AGENT_SOCKET="$AGENT_WORK/admin.sock"
  topo_on_cleanup "agent_teardown"
  mkdir -p "$AGENT_WORK/config"
  for i in 1 2 3 4; do
    ns=$(topo_ns backend "$i")
    topo_spawn "$ns" "$SLUICE_TEST_BACKEND" --name "${AGENT_BACKENDS[$((i - 1))]}" --http 9080 --tcp 9081 "$@"
  done
  for i in 1 2 3 4; do
    topo_wait_port "$(topo_ns node)" "$(topo_addr backend "$i")" 9080 || exit 1
    topo_wait_port "$(topo_ns node)" "$(topo_addr backend "$i")" 9081 || exit 1
  done
  # Resolve the node's neighbour entry for the client before traffic flows.
  topo_exec "$(topo_ns node)" timeout 2 bash -c "exec 3<>/dev/tcp/$(topo_addr client)/9" 2>/dev/null
  agent_write_static_config
}

# agent_grpc_backends: a grpcio server (grpc_backend.py, python3-grpcio) on
# port 50051 in each backend namespace, named as its workload; their pids in
# AGENT_GRPC_PIDS. Returns non-zero if one does not listen.
AGENT_GRPC_PIDS=()
agent_grpc_backends() {
  local i lib_dir
  lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  for i in 1 2 3 4; do
    topo_spawn "$(topo_ns backend "$i")" /usr/bin/python3 "$lib_dir/grpc_backend.py" "${AGENT_BACKENDS[$((i - 1))]}" \
      "$(topo_addr backend "$i"):50051"
    AGENT_GRPC_PIDS+=("$TOPO_LAST_PID")
  done
  for i in 1 2 3 4; do topo_wait_port "$(topo_ns node)" "$(topo_addr backend "$i")" 50051 || return 1; done
}

agent_teardown() {
  agent_stop TERM
  [[ -n "$AGENT_PIN" && -d "$AGENT_PIN" ]] && rm -rf -- "$AGENT_PIN"
  [[ -n "$AGENT_WORK" && -d "$AGENT_WORK" ]] && rm -rf -- "$AGENT_WORK"
  return 0
}

agent_write_static_config() {
  local dir="$AGENT_WORK/config" i v
  cat >"$dir/serviceentry.yaml" <<YAML
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  addresses: [10.96.0.10]
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  - {number: 9081, name: tcp, protocol: TCP}
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
metadata: {name: ${AGENT_BACKENDS[$((i - 1))]}, namespace: default}
spec:
  address: $(topo_addr backend "$i")
  labels: {app: productpage, version: $v}
YAML
  done
}

# agent_write_routing LINE7 SUBSET1 W1 W2 [POLICY]: routing.yaml (POLICY:
# the subsets' simple load balancer, ROUND_ROBIN by default), replaced atomically
# (write + rename, as editors and ConfigMap updates do). Line numbers are
# fixed so invalid variants have known locations: line 7 is the http route's
# first field, line 9 the first destination, line 10 its weight.
agent_write_routing() {
  local dir="$AGENT_WORK/config"
  cat >"$dir/.routing.yaml.tmp" <<YAML
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - $1
    route:
    - destination: {host: productpage, subset: $2}
      weight: $3
    - destination: {host: productpage, subset: v2}
      weight: $4
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: productpage, namespace: default}
spec:
  host: productpage
  trafficPolicy: {loadBalancer: {simple: ${5:-ROUND_ROBIN}}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
  mv "$dir/.routing.yaml.tmp" "$dir/routing.yaml"
}

agent_start() {   # agent_start [EXTRA SLUICED ARGS...]; waits for /ready
  local node i ifaces=(--iface c0)
  node=$(topo_ns node)
  for i in 1 2 3 4; do ifaces+=(--iface "b$i"); done
  nsenter --net="/run/netns/$node" "$SLUICED" --config-dir "$AGENT_WORK/config" --pin-dir "$AGENT_PIN" \
    "${ifaces[@]}" --admin "$AGENT_ADMIN" --admin-socket "$AGENT_SOCKET" --workers 2 --debounce-ms 50 "$@" \
    >>"$AGENT_WORK/sluiced.log" 2>&1 &
  AGENT_PID=$!
  for i in $(seq 150); do
    agent_curl -sf "http://$AGENT_ADMIN/ready" >/dev/null && return 0
    kill -0 "$AGENT_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: sluiced did not become ready; its log:" >&2
  tail -30 "$AGENT_WORK/sluiced.log" >&2
  exit 1
}

agent_stop() {   # agent_stop TERM|KILL: signal sluiced and wait (bounded) for it
  [[ -n "$AGENT_PID" ]] || return 0
  kill "-$1" "$AGENT_PID" 2>/dev/null
  local i
  for i in $(seq 100); do
    kill -0 "$AGENT_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$AGENT_PID" 2>/dev/null; then
    echo "FAIL: sluiced still running 10 s after SIG$1" >&2
    agent_failures=$((agent_failures + 1))
    kill -KILL "$AGENT_PID"
  fi
  wait "$AGENT_PID" 2>/dev/null
  AGENT_PID=""
}

agent_curl() { nsenter --net="/run/netns/$(topo_ns node)" curl -s -m 5 "$@"; }
agent_ctl() { nsenter --net="/run/netns/$(topo_ns node)" "$SLUICECTL" "$@" --admin "$AGENT_ADMIN" --admin-socket "$AGENT_SOCKET"; }
agent_status() { agent_curl "http://$AGENT_ADMIN/status"; }
agent_json() {   # agent_json JSON_TEXT PYTHON_EXPR (j is the parsed JSON)
  python3 -c "import json,sys; j=json.loads(sys.argv[1]); print($2)" "$1"
}

agent_loadgen() {   # agent_loadgen ARGS... (in the client namespace; JSON on stdout)
  topo_exec "$(topo_ns client)" "$SLUICE_LOADGEN" "$@"
}

# agent_share_ok LOADGEN_JSON EXPECTED_V1_PERCENT: the v1 share of what the
# loadgen saw is within 4.5 standard deviations of a binomial with n = the
# answers counted (exactly 0 or 100 when the weight is 0 or 100). 4.5 sigma
# keeps a false failure below 1 in 100,000 per check, so a run of a few
# hundred checks stays reliable, while a split off by 16 points or more at
# n=200 (e.g. 50/50 served for 70/30) still fails, and 0/100 must be exact.
# In awk, not python: agent_canary runs it 400 times, and a python start
# costs up to a second of CPU on a busy 2-core runner. The loadgen's JSON is
# one line and backend names hold no quote, comma, brace or space, so the
# "backends" object splits on commas and colons.
agent_share_ok() {
  awk -v json="$1" -v pct="$2" 'BEGIN {
    p = pct / 100
    tally = ""
    if (json ~ /"backends":[ \t]*\{/) {
      tally = json
      sub(/.*"backends":[ \t]*\{/, "", tally)
      sub(/\}.*/, "", tally)
      gsub(/[ \t\n]/, "", tally)   # pretty-printed JSON counts too
    }
    n = 0; v1 = 0
    count = split(tally, entries, ",")
    for (i = 1; i <= count; i++) {
      if (split(entries[i], kv, ":") != 2) continue
      n += kv[2]
      if (kv[1] ~ /-v1-/) v1 += kv[2]
    }
    if (n == 0) { printf "  no answers counted: %s\n", json; exit 1 }
    share = v1 / n
    tol = (p == 0 || p == 1) ? 0 : 4.5 * sqrt(p * (1 - p) / n)
    d = share - p
    if (d < 0) d = -d
    if (d <= tol + 1e-9) exit 0
    printf "  v1 share %.3f, expected %.3f +- %.3f (n=%d): {%s}\n", share, p, tol, n, tally
    exit 1
  }'
}

# agent_background_load SECONDS: steady traffic on both planes from the
# client namespace (keep-alive HTTP to :9080, new TCP connections to :9081),
# one loadgen run after the other, until SECONDS have passed or the test's
# cleanup stops it (TERM ends the loop and the run in flight).
agent_background_load() {
  # shellcheck disable=SC2016
  topo_spawn "$(topo_ns client)" bash -c '
    trap "kill \$c 2>/dev/null; exit 0" TERM
    end=$((SECONDS + $1))
    while ((SECONDS < end)); do
      "$2" http --url http://10.96.0.10:9080/ --count 300 --concurrency 4 --keepalive --timeout-s 3 >/dev/null 2>&1 & c=$!
      wait $c
      "$2" tcp --connect 10.96.0.10:9081 --count 150 --concurrency 8 --timeout-s 3 >/dev/null 2>&1 & c=$!
      wait $c
    done' _ "$1" "$SLUICE_LOADGEN"
  AGENT_LOAD_PID=$TOPO_LAST_PID
}

# agent_wait_full_window: until the agent's /stats/window covers its whole
# 10 s (bounded: 20 s), so a shift starts from a window of the old weights only.
agent_wait_full_window() {
  local i
  for i in $(seq 40); do
    agent_json "$(agent_curl "http://$AGENT_ADMIN/stats/window")" 'int(j["covered_seconds"] >= j["window_seconds"])' 2>/dev/null \
      | grep -qx 1 && return 0
    sleep 0.5
  done
  echo "FAIL: /stats/window did not cover 10 s within 20 s"
  return 1
}

agent_finish() {
  if ((agent_failures > 0)); then
    echo "--- sluiced log (tail) ---"
    tail -30 "$AGENT_WORK/sluiced.log"
    exit 1
  fi
  exit 0
}

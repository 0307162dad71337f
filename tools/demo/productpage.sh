#!/usr/bin/env bash
# The demo's body (tools/demo.sh runs it after installing and building):
# sluiced on the built-in productpage example in a namespace topology, a live
# canary shift on both planes, then the load-balancing policies, then cleanup.
#
# Everything it creates has an exact, fixed name, so a second run (or a run
# after a crash) can find it: namespaces slc-demo-{client,node,be1..be4}, the
# pin dir /sys/fs/bpf/slc-demo, the work dir /tmp/slc-demo. A lock keeps two
# demos from running at once; leftovers of a dead run are removed by those
# names (processes: the ones inside those namespaces) before starting.
#
# Environment: SLUICE_BUILD_DIR (default ./build) holds the binaries.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${SLUICE_BUILD_DIR:-$repo/build}
report="$repo/tools/demo/report.py"
example="$repo/docs/examples/productpage"

SLUICED=$build/userspace/agent/sluiced
SLUICECTL=$build/userspace/ctl/sluicectl
LOADGEN=$build/tools/sluice-loadgen
BACKEND=$build/tools/sluice-test-backend
XDP_PASS_OBJ=$build/bpf/xdp_pass.bpf.o

PREFIX=slc-demo
PIN_DIR=/sys/fs/bpf/slc-demo
WORK=/tmp/slc-demo
LOCK=/run/lock/slc-demo.lock
FAILED_LOG=/tmp/slc-demo-sluiced.log
ADMIN=127.0.0.1:15000
VIP=10.96.0.10
BACKENDS=(productpage-v1-a productpage-v1-b productpage-v2-a productpage-v2-b)
# Extra client addresses, so consistent hashing by source IP has clients to pin.
CLIENT_EXTRA=(10.200.1.3 10.200.1.4 10.200.1.5 10.200.1.6)

# Load per one-second line: sized to finish in well under a second on a busy
# 2-core machine; each run is also bounded by its own time limit.
L4_PER_TICK=${SLUICE_DEMO_L4_PER_TICK:-400}
L7_PER_TICK=${SLUICE_DEMO_L7_PER_TICK:-600}
RUN_LIMIT_S=4          # hard limit of one loadgen run (sluice-loadgen --timeout-s)
CONN_LIMIT_MS=2000     # one connection or request (--conn-timeout-ms)

bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
[[ -t 1 ]] || { bold="" dim="" off=""; }
say() { printf '%s\n' "$*"; }
section() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- preflight
[[ $EUID -eq 0 ]] || die "run as root: the demo creates network namespaces and attaches XDP programs"
for f in "$SLUICED" "$SLUICECTL" "$LOADGEN" "$BACKEND" "$XDP_PASS_OBJ"; do
  [[ -e $f ]] || die "missing $f; build first (tools/build.sh)"
done
for c in ip nsenter python3 flock curl; do
  command -v "$c" >/dev/null || die "missing command '$c' (tools/install-deps.sh installs it)"
done

mkdir -p "$(dirname "$LOCK")"
exec 9>"$LOCK" || die "cannot open $LOCK"
flock -n 9 || die "another demo is running (it holds $LOCK); wait for it to finish or stop it"
# Every background process below gets `9>&-`: only this script holds the
# lock, so if it is killed outright the next run can take the lock and
# remove what it left.

our_namespaces=("$PREFIX-client" "$PREFIX-node" "$PREFIX-be1" "$PREFIX-be2" "$PREFIX-be3" "$PREFIX-be4")

# A previous run that was killed outright (SIGKILL, power loss) leaves its
# namespaces, their processes and the pin dir. We hold the lock, so nothing
# of ours is live: remove exactly those names.
remove_leftovers() {
  local ns pid found=0
  for ns in "${our_namespaces[@]}"; do
    [[ -e /run/netns/$ns ]] || continue
    found=1
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      say "  stopping pid $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-60)) in $ns"
      kill -TERM "$pid" 2>/dev/null
    done
  done
  if ((found)); then
    sleep 1
    for ns in "${our_namespaces[@]}"; do
      [[ -e /run/netns/$ns ]] || continue
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
      say "  deleting namespace $ns"
      ip netns del "$ns"
    done
  fi
  if [[ -d $PIN_DIR ]]; then say "  removing $PIN_DIR"; rm -rf -- "$PIN_DIR"; found=1; fi
  if [[ -d $WORK ]]; then say "  removing $WORK"; rm -rf -- "$WORK"; found=1; fi
  return 0
}
if [[ -e /run/netns/$PREFIX-node || -e /run/netns/$PREFIX-client || -d $PIN_DIR || -d $WORK ]]; then
  say "Leftovers of an earlier demo run found; removing them (by exact name):"
  remove_leftovers
fi

# ---------------------------------------------------------------- topology
# shellcheck source-path=SCRIPTDIR/../..
# shellcheck source=tests/integration/lib/topology.sh
source "$repo/tests/integration/lib/topology.sh"

AGENT_PID=""
HOLD_PID=""
load_pids=()
backend_pids=()
finished=0
demo_result=1   # until the summary says otherwise

stop_agent() {
  [[ -n $AGENT_PID ]] || return 0
  kill -TERM "$AGENT_PID" 2>/dev/null
  local i
  for ((i = 0; i < 50; i++)); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$AGENT_PID" 2>/dev/null; then
    say "demo: sluiced (pid $AGENT_PID) still running 5 s after SIGTERM; killing it" >&2
    kill -KILL "$AGENT_PID" 2>/dev/null
  fi
  wait "$AGENT_PID" 2>/dev/null
  AGENT_PID=""
}

demo_cleanup() {
  local pid
  ((finished)) || say "demo: stopping early; cleaning up (namespaces, processes, $PIN_DIR, $WORK)"
  for pid in "${load_pids[@]}" $HOLD_PID; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${load_pids[@]}" $HOLD_PID; do wait "$pid" 2>/dev/null; done
  stop_agent
  for pid in "${backend_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${backend_pids[@]}"; do wait "$pid" 2>/dev/null; done
  # --detach-on-exit unpins; this catches a sluiced that had to be killed.
  [[ -d $PIN_DIR ]] && rm -rf -- "$PIN_DIR"
  # A failed or interrupted run keeps the agent's log (one file, same name each time).
  if [[ $demo_result != 0 && -f $WORK/sluiced.log ]]; then
    cp "$WORK/sluiced.log" "$FAILED_LOG" && say "demo: sluiced's log is in $FAILED_LOG"
  fi
  [[ -d $WORK ]] && rm -rf -- "$WORK"
  return 0
}

peer_xdp_pass() {   # topology link hook: native veth redirects need XDP on the receiving peer (docs/bpf-datapath.md)
  case "$3" in
    client | backend) ip -n "$1" link set dev "$2" xdpdrv obj "$XDP_PASS_OBJ" sec xdp ;;
  esac
}

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mkdir -p "$WORK/config"
cp "$example"/*.yaml "$WORK/config/"
totals="$WORK/totals.json"
started=$SECONDS

node=$PREFIX-node
client=$PREFIX-client
# Commands run in a namespace with nsenter, which execs: a background job's
# $! is then the program itself, not a shell function's subshell, so cleanup
# signals the right pid. (ip netns exec would also hide /sys/fs/bpf.)
in_node_cmd=(nsenter --net="/run/netns/$node")
in_client_cmd=(nsenter --net="/run/netns/$client")
in_node() { "${in_node_cmd[@]}" "$@"; }
ctl() { in_node "$SLUICECTL" "$@" --admin "$ADMIN" --admin-socket "$WORK/admin.sock"; }
admin_get() { in_node curl -s -m 3 "http://$ADMIN$1"; }
agent_version() { admin_get /status | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])' 2>/dev/null; }

cat <<EOF
${bold}sluice demo: the productpage example on a real node, both data planes${off}

  $PREFIX-client   10.200.1.2 (+ .3-.6)  sluice-loadgen: TCP to $VIP:9081, HTTP to $VIP:9080
        | veth eth0 <-> c0
  $PREFIX-node     sluiced --config-dir <copy of docs/examples/productpage>
                     L4: XDP steering program on c0 and b1..b4 picks v1/v2 and a backend
                         per new TCP connection (port 9081), NAT in the kernel
                     L7: io_uring HTTP/1.1 proxy behind an sk_lookup program routes
                         every request (port 9080); admin API on $ADMIN
        | veths b1..b4
  $PREFIX-be1..4   sluice-test-backend (HTTP 9080, TCP 9081), answering with their name:
                     productpage-v1-a 10.200.11.2   productpage-v1-b 10.200.12.2   (version: v1)
                     productpage-v2-a 10.200.13.2   productpage-v2-b 10.200.14.2   (version: v2)

  Each line below is one second of traffic: $L4_PER_TICK TCP connections and $L7_PER_TICK HTTP
  requests (keep-alive, so the split you see is per request), counted by the
  backend that answered. Any reset, timeout, refusal or non-2xx answer is an error.
EOF

section "Setting up (namespaces, backends, sluiced)"
TOPO_LINK_HOOK=peer_xdp_pass
topo_create "$PREFIX" 4 || die "topology setup failed"
topo_on_cleanup demo_cleanup
# topology.sh turns INT/TERM into exit 130; its EXIT trap then cleans up.
for a in "${CLIENT_EXTRA[@]}"; do ip -n "$client" addr add "$a/24" dev eth0; done
start_backend() {   # start_backend I [EXTRA ARGS]: sluice-test-backend in backend namespace I
  local i=$1
  shift
  nsenter --net="/run/netns/$(topo_ns backend "$i")" "$BACKEND" --name "${BACKENDS[$((i - 1))]}" \
    --http 9080 --tcp 9081 "$@" >>"$WORK/backend-$i.log" 2>&1 9>&- &
  backend_pids[i]=$!
}
wait_backend() {
  local addr
  addr=$(topo_addr backend "$1")
  if ! topo_wait_port "$node" "$addr" 9080 || ! topo_wait_port "$node" "$addr" 9081; then
    die "${BACKENDS[$(($1 - 1))]} did not start; its log: $(tail -3 "$WORK/backend-$1.log")"
  fi
}
for i in 1 2 3 4; do start_backend "$i"; done
for i in 1 2 3 4; do wait_backend "$i"; done
# Resolve the node's neighbour entries for the client addresses before XDP
# forwards to them (until then bpf_fib_lookup answers NO_NEIGH).
for a in 10.200.1.2 "${CLIENT_EXTRA[@]}"; do
  in_node timeout 2 bash -c "exec 3<>/dev/tcp/$a/9" 2>/dev/null
done

"${in_node_cmd[@]}" "$SLUICED" --config-dir "$WORK/config" --pin-dir "$PIN_DIR" \
  --iface c0 --iface b1 --iface b2 --iface b3 --iface b4 \
  --admin "$ADMIN" --admin-socket "$WORK/admin.sock" --workers 2 --debounce-ms 50 --drain-timeout 2 --detach-on-exit \
  >>"$WORK/sluiced.log" 2>&1 9>&- &
AGENT_PID=$!
ready=0
for ((i = 0; i < 100; i++)); do
  if in_node curl -sf -o /dev/null -m 2 "http://$ADMIN/ready"; then
    ready=1
    break
  fi
  kill -0 "$AGENT_PID" 2>/dev/null || break
  sleep 0.1
done
if ((!ready)); then
  say "sluiced did not become ready; its log:"
  tail -30 "$WORK/sluiced.log"
  exit 1
fi
say "  namespaces ${our_namespaces[*]}; 4 backends up; sluiced (pid $AGENT_PID) ready after $((SECONDS - started)) s"

section "\$ sluicectl status"
ctl status | sed 's/^/  /'

section "\$ sluicectl routes"
ctl routes | sed 's/^/  /'
section "\$ sluicectl clusters   (per-subset rows; the '(all)' rows list the same endpoints)"
ctl clusters | awk '$4 != "(all)"' | sed 's/^/  /'

# ---------------------------------------------------------------- traffic
# One second of load on both planes at once; prints one line via report.py.
# $1 label; files go to $WORK/tick.N.{l4,l7}.json and are remembered in
# step_l4 / step_l7 for the step's check.
tick_no=0
step_l4=() step_l7=()
load_pair() {   # load_pair L4_OUT L7_OUT [--source ADDR]: both loadgens in parallel, bounded
  local l4_out=$1 l7_out=$2
  shift 2
  "${in_client_cmd[@]}" "$LOADGEN" tcp --connect "$VIP:9081" --count "$L4_PER_TICK" --concurrency 16 \
    --timeout-s "$RUN_LIMIT_S" --conn-timeout-ms "$CONN_LIMIT_MS" "$@" >"$l4_out" 2>>"$WORK/loadgen.err" 9>&- &
  load_pids+=($!)
  "${in_client_cmd[@]}" "$LOADGEN" http --url "http://$VIP:9080/" --count "$L7_PER_TICK" --concurrency 8 --keepalive \
    --timeout-s "$RUN_LIMIT_S" --conn-timeout-ms "$CONN_LIMIT_MS" "$@" >"$l7_out" 2>>"$WORK/loadgen.err" 9>&- &
  load_pids+=($!)
  wait "${load_pids[@]}" 2>/dev/null
  load_pids=()
}

log_mark() { wc -l <"$WORK/sluiced.log"; }
agent_log_since() {   # agent_log_since LINE: what sluiced logged since then (shown next to errors)
  local lines
  lines=$(tail -n +"$(($1 + 1))" "$WORK/sluiced.log" | grep -v ': note: ' | cut -c1-220)
  if [[ -n $lines ]]; then
    say "      sluiced log meanwhile:"
    sed 's/^/        /' <<<"$lines" | tail -8
  else
    say "      (sluiced logged nothing meanwhile)"
  fi
}

tick() {   # tick LABEL: one line, paced to at least one second
  local t0 l4 l7 mark
  t0=$(date +%s%N)
  mark=$(log_mark)
  tick_no=$((tick_no + 1))
  l4="$WORK/tick.$tick_no.l4.json" l7="$WORK/tick.$tick_no.l7.json"
  load_pair "$l4" "$l7"
  python3 "$report" tick "$totals" "$1" "$l4" "$l7" || agent_log_since "$mark"
  step_l4+=("$l4") step_l7+=("$l7")
  local left_ms=$((1000 - ($(date +%s%N) - t0) / 1000000))
  ((left_ms > 0)) && sleep "$(printf '0.%03d' "$left_ms")"
  return 0
}

step() {   # step W1 W2 TICKS: observe, then check the step's whole sample against its weight
  local w1=$1 w2=$2 n=$3 i
  step_l4=() step_l7=()
  for ((i = 0; i < n; i++)); do tick "$w1/$w2"; done
  python3 "$report" step "$totals" "$w1/$w2" "$w1" "${step_l4[@]}" -- "${step_l7[@]}"
}

wait_for_version_after() {   # wait_for_version_after V: until /status shows a version > V (5 s)
  local i v
  for ((i = 0; i < 100; i++)); do
    v=$(agent_version)
    [[ -n $v && $v -gt $1 ]] && return 0
    sleep 0.05
  done
  say "  demo: sluiced did not apply the file change within 5 s; its log:"
  tail -5 "$WORK/sluiced.log" | cut -c1-220 | sed 's/^/    /'
  python3 "$report" miss "$totals" "a config file change was not applied within 5 s"
  return 1
}

last_applied_line() {   # the agent's own log line for the change just applied, without its timestamp
  grep 'config version' "$WORK/sluiced.log" | tail -1 | sed -E 's/^[0-9T:.-]+ +[a-z]+ +//' | cut -c1-220
}

shift_with_ctl() {   # shift_with_ctl W1 W2
  say ""
  say "${bold}\$ sluicectl weights productpage v1=$1 v2=$2${off}"
  local out
  if out=$(ctl weights productpage "v1=$1" "v2=$2" 2>&1); then
    sed 's/^/  /' <<<"$out"
  else
    say "  sluicectl weights failed: $out"
    python3 "$report" miss "$totals" "sluicectl weights productpage v1=$1 v2=$2 failed: $out"
  fi
}

routing_file="$WORK/config/virtualservice-destinationrule.yaml"
# write_routing W1 W2 [TRAFFIC_POLICY_YAML]: rewrite the routing file the way
# editors and ConfigMap updates do (write a temporary file, then rename).
write_routing() {
  local tp=""
  [[ -n ${3:-} ]] && tp="  trafficPolicy: $3"
  cat >"$WORK/config/.routing.tmp" <<YAML
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - destination: {host: productpage, subset: v1}
      weight: $1
    - destination: {host: productpage, subset: v2}
      weight: $2
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
$tp
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
  mv "$WORK/config/.routing.tmp" "$routing_file"
}

section "Canary shift, live: 100/0 -> 99/1 -> 70/30 -> 50/50 -> 0/100"
say "  ${dim}The example starts at 70/30. 16 long-lived TCP connections are held open through"
say "  all shifts: XDP's connection tracking must keep each one on its backend.${off}"
"${in_client_cmd[@]}" "$LOADGEN" hold --connect "$VIP:9081" --connections 16 --duration-s 60 --interval-ms 250 \
  --timeout-s 70 >"$WORK/hold.json" 2>>"$WORK/loadgen.err" 9>&- &
HOLD_PID=$!

shift_with_ctl 100 0
step 100 0 3
shift_with_ctl 99 1
step 99 1 3
shift_with_ctl 70 30
step 70 30 3

say ""
say "${bold}\$ edit $(basename "$routing_file"): weight 70 -> 50, weight 30 -> 50${off}  ${dim}(the agent watches the directory)${off}"
v=$(agent_version)
sed -e 's/weight: 70/weight: 50/' -e 's/weight: 30/weight: 50/' "$routing_file" >"$WORK/config/.routing.tmp"
mv "$WORK/config/.routing.tmp" "$routing_file"
wait_for_version_after "$v" && say "  sluiced: $(last_applied_line)"
step 50 50 3
shift_with_ctl 0 100
step 0 100 3

kill -USR1 "$HOLD_PID" 2>/dev/null
sleep 0.3
kill -TERM "$HOLD_PID" 2>/dev/null
wait "$HOLD_PID" 2>/dev/null
HOLD_PID=""
# The hold report: the last JSON line printed (SIGUSR1 prints one without stopping).
tail -1 "$WORK/hold.json" >"$WORK/hold.last.json"
python3 "$report" held "$totals" "$WORK/hold.last.json"

# ---------------------------------------------------------------- policies
section "Load-balancing policies inside each subset (DestinationRule trafficPolicy, file edits)"
say "  ${dim}Weights back to the file's 50/50 (a file change replaces runtime overrides);"
say "  each policy gets two seconds of traffic, split per backend inside v1 and v2.${off}"

policy() {   # policy TITLE TRAFFIC_POLICY_YAML
  local v
  say ""
  say "${bold}  $1${off}   ${dim}trafficPolicy: $2${off}"
  v=$(agent_version)
  write_routing 50 50 "$2"
  wait_for_version_after "$v" || return 0
  local i l4s=() l7s=() mark
  mark=$(log_mark)
  for i in 1 2; do
    tick_no=$((tick_no + 1))
    load_pair "$WORK/tick.$tick_no.l4.json" "$WORK/tick.$tick_no.l7.json"
    l4s+=("$WORK/tick.$tick_no.l4.json") l7s+=("$WORK/tick.$tick_no.l7.json")
  done
  python3 "$report" spread "$totals" "${l4s[@]}" -- "${l7s[@]}" || agent_log_since "$mark"
}

policy "ROUND_ROBIN" "{loadBalancer: {simple: ROUND_ROBIN}}"
policy "RANDOM" "{loadBalancer: {simple: RANDOM}}"

# Least-request only shows its worth when backends differ: make one slow.
say ""
say "  ${dim}productpage-v1-b restarted with --delay-ms 20: its HTTP answers now take 20 ms (its TCP"
say "  greeting does not). LEAST_REQUEST should send it fewer HTTP requests; on port 9081 XDP"
say "  compares each backend's active TCP flows (opened - closed, counted in the kernel).${off}"
kill -TERM "${backend_pids[2]}" 2>/dev/null
wait "${backend_pids[2]}" 2>/dev/null
start_backend 2 --delay-ms 20
wait_backend 2
policy "LEAST_REQUEST" "{loadBalancer: {simple: LEAST_REQUEST}}"

say ""
tp="{loadBalancer: {consistentHash: {useSourceIp: true}}}"
say "${bold}  consistentHash by source IP${off}   ${dim}trafficPolicy: $tp${off}"
say "  ${dim}five client addresses, each opens 100 connections and sends 100 requests (a new connection each)${off}"
v=$(agent_version)
write_routing 50 50 "$tp"
if wait_for_version_after "$v"; then
  pairs=()
  mark=$(log_mark)
  for a in 10.200.1.2 "${CLIENT_EXTRA[@]}"; do
    "${in_client_cmd[@]}" "$LOADGEN" tcp --connect "$VIP:9081" --count 100 --concurrency 8 --source "$a" \
      --timeout-s "$RUN_LIMIT_S" --conn-timeout-ms "$CONN_LIMIT_MS" >"$WORK/hash.$a.l4.json" 2>>"$WORK/loadgen.err" 9>&- &
    load_pids+=($!)
    "${in_client_cmd[@]}" "$LOADGEN" http --url "http://$VIP:9080/" --count 100 --concurrency 2 --source "$a" \
      --timeout-s "$RUN_LIMIT_S" --conn-timeout-ms "$CONN_LIMIT_MS" >"$WORK/hash.$a.l7.json" 2>>"$WORK/loadgen.err" 9>&- &
    load_pids+=($!)
    pairs+=("$a=$WORK/hash.$a.l4.json,$WORK/hash.$a.l7.json")
  done
  wait "${load_pids[@]}" 2>/dev/null
  load_pids=()
  python3 "$report" pinned "$totals" "${pairs[@]}" || agent_log_since "$mark"
fi

# ---------------------------------------------------------------- wrap-up
section "\$ sluicectl stats   (excerpt: two Istio counters, labels shortened)"
ctl stats | python3 "$report" stats "$totals"

section "Summary"
python3 "$report" summary "$totals"
rc=$?
# The agent's own complaints, if any (its notes about the example config are expected).
log_problems=$(grep -E '^[0-9T:.-]+ +(warning|error|critical) ' "$WORK/sluiced.log" | grep -cv ': note: ')
if ((log_problems > 0)); then
  say "  sluiced logged $log_problems warning/error line(s); the last ones:"
  grep -E '^[0-9T:.-]+ +(warning|error|critical) ' "$WORK/sluiced.log" | grep -v ': note: ' | tail -8 | cut -c1-220 | sed 's/^/    /'
fi
finished=1
demo_result=$rc
say "  demo ran $((SECONDS - started)) s; cleaning up (namespaces, processes, $PIN_DIR, $WORK)"
exit "$rc"

#!/usr/bin/env bash
# HTTP/2 (h2c) proxy benchmark: sluice vs HAProxy 2.6 (`proto h2`) vs nginx
# 1.22 (`listen ... http2`, `grpc_pass`), each a 70/30 weighted proxy that
# speaks h2c (prior knowledge) to the client and to the same four nginx h2c
# backends, one worker each, driven by h2load (h2c, H2_CLIENTS connections
# x H2_STREAMS concurrent streams, H2_THREADS threads; default 32 x 10, 1);
# plus the direct no-proxy ceiling (h2load straight at one backend). Prints
# requests/s, p50 and p99 (from h2load's per-request log), proxy CPU per
# request (utime + stime from /proc/PID/stat), the machine's CPU per request
# (node µs/req, niced work left out), and ratios against HAProxy and nginx,
# all in the same run. With ROUNDS > 1 the proxies are measured in turn
# ROUNDS times and each figure is the median over the rounds. The order
# rotates from round to round (round r starts with the r-th proxy), so that
# over as many rounds as there are proxies each takes every place once and
# no proxy is always the one measured after another's load.
#
# Before measuring, a sanity pass sends H2_PROBES requests through each proxy
# tagged with an `x-bench-probe` header, which the backends (and only for
# those requests) log with their protocol: it prints, per proxy, the share of
# requests that reached the v1 backends (70 expected) and the protocol the
# backends saw (HTTP/2.0 expected), beside the protocol h2load negotiated
# with the proxy (h2c expected).
#
# As in tools/bench/l7_proxy.sh, a second phase offers every proxy the same
# fixed rate — FIXED_RATE_SHARE (default 0.8; 0 skips it) of HAProxy's median
# closed-loop throughput — for latency at equal load. PERF=1 samples sluice
# with `perf record -g` during its last closed-loop round and prints the top
# of the report (PERF_KEEP=FILE keeps perf.data).
#
# Each closed-loop run also counts the TCP data segments the proxy (or, for
# `direct`, the backend) sent to h2load per request, from `ss -tin`
# (data_segs_out of its client connections) between 2 s into the run and 1 s
# before its end, over the requests h2load started in that window: how many
# responses each write to a client carries (fewer segments, fewer wake-ups
# and reads for h2load; docs/benchmarks.md, "HTTP/2 write batching").
# Needs DURATION_SECONDS >= 4. Likewise the data segments sent to the
# backends per request (for `direct`, h2load's own): how many requests each
# write upstream carries (not for nginx, whose upstream connections come
# and go). Beside them, the four backends' CPU per
# request (their utime + stime over the run): what a proxy's way of
# writing to them costs them.
#
# PEER_HEADERS=1 has HAProxy and nginx add what sluice adds to every
# request by default (Envoy's behaviour in Istio): an `x-request-id` (a
# UUID; nginx: its 32-hex `$request_id`) and `x-forwarded-proto: http`, so
# the backends parse the same fields behind each proxy. Default 0: the
# peers as configured above, adding nothing.
#
# PROXY_CPU=SHARE (e.g. 0.5) caps each proxy at SHARE of one CPU with the
# kernel's CFS bandwidth control (cap_cpu in l7_bench_lib.sh), so that each
# proxy, not the machine, is the bottleneck of its run: requests/s is then
# what a proxy does with the same CPU. Uncapped, the proxy shares the
# machine's cores with h2load and the backends, and no proxy can pass the
# `direct` row. The direct row is never capped. Capped, two processes of
# the same build came out up to ~16% apart (uncapped: 1%; cause not found,
# docs/benchmarks.md): for an A/B of two sluice builds (SLUICE_B), measure
# uncapped.
#
# SLUICE_B=PATH (another build of sluice-l7-proxy, e.g. the commit before a
# change) adds a row `sluice-b`, measured in turn with the others on
# 127.78.0.4 with the same config, and a line of its ratios against
# `sluice`: an A/B of two builds in one run, as the machine is at the time.
#
# PATH (third argument) says where the traffic goes, as in
# tools/bench/l7_proxy.sh:
#   loopback  every process on 127.78.0.0/16, port 38280, in the caller's
#             namespace; sluice is the standalone proxy (sluice-l7-proxy).
#   node      the path users have: h2load in a client namespace, the proxies
#             in a node namespace, each nginx backend in its own namespace
#             behind its own veth (tests/integration/lib/topology.sh). sluice
#             is `sluiced` with XDP on every node veth and the client
#             connects to the service VIP (10.96.0.10:38280), which the
#             sk_lookup program hands to the proxy; HAProxy and nginx listen
#             on the node's client-side address (ports 38281 and 38282).
#             Needs root. SLUICE_XDP=0 starts sluiced without XDP on the
#             veths. SLUICE_B is loopback only. The segment counts are read
#             with `ss` in the namespace of the sending side.
#
#   tools/bench/h2_proxy.sh [DURATION_SECONDS [ROUNDS [loopback|node]]]   (default 10 1 loopback)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10}
ROUNDS=${2:-1}
NET=${3:-loopback}
CLIENTS=${H2_CLIENTS:-32}
STREAMS=${H2_STREAMS:-10}
THREADS=${H2_THREADS:-1}
PROBES=${H2_PROBES:-4000}
SHARE=${FIXED_RATE_SHARE:-0.8}
BUILD=${MESON_BUILD_ROOT:-build}
case $NET in
  loopback) SLUICE=$BUILD/userspace/proxy/sluice-l7-proxy ;;
  node) SLUICE=$BUILD/userspace/agent/sluiced
        [[ $EUID -eq 0 ]] || { echo "the node path needs root (network namespaces, XDP)" >&2; exit 1; }
        [[ -z ${SLUICE_B:-} ]] || { echo "SLUICE_B is for the loopback path only" >&2; exit 1; } ;;
  *) echo "PATH must be loopback or node, not '$NET'" >&2; exit 1 ;;
esac
for tool in h2load nginx haproxy; do command -v $tool >/dev/null || { echo "missing $tool" >&2; exit 1; }; done
[[ -x $SLUICE ]] || { echo "build $SLUICE first (ninja -C $BUILD)" >&2; exit 1; }
# shellcheck source=l7_bench_lib.sh
source tools/bench/l7_bench_lib.sh
check_proxy_cpu

TMP=$(mktemp -d /tmp/slc-h2-bench.XXXXXX)
PIDS=()
cleanup() {
  stop_pids
  uncap_cpu
  [[ -n ${PIN:-} && -d $PIN ]] && rm -rf -- "$PIN"
  rm -rf "$TMP"
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
PORT=38280
if [[ $NET == node ]]; then
  node_path slcb-h2
  # Where `ss` sees the sending side: a proxy's sockets are on the node; for
  # `direct`, the backend's toward h2load and h2load's toward the backend.
  IN_DIRECT_SERVER=(ip netns exec "$(topo_ns backend 1)")
else
  trap cleanup EXIT
  IN_CLIENT=() IN_NODE=() IN_DIRECT_SERVER=()
  in_backend() { IN_BACKEND=(); }
  BACKENDS=(v1-a:127.78.11.2:35 v1-b:127.78.12.2:35 v2-a:127.78.13.2:15 v2-b:127.78.14.2:15)
  SLUICE_ADDR=127.78.0.1 HAPROXY_ADDR=127.78.0.2 NGINX_ADDR=127.78.0.3 DIRECT_ADDR=127.78.11.2
  HAPROXY_PORT=$PORT NGINX_PORT=$PORT
fi

start_backends "$PORT" http2
# sluice speaks h2c upstream to a port declared HTTP2 (docs/l7-proxy.md, "HTTP/2 upstream").
sluice_config "$SLUICE_ADDR" "$PORT" HTTP2

# HAProxy and nginx: the same 70/30 split as server weights (35+35 / 15+15).
{
  printf 'global\n  nbthread 1\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  http-reuse always\n'
  printf 'frontend fe\n  bind %s:%s proto h2\n  default_backend be\n' "$HAPROXY_ADDR" "$HAPROXY_PORT"
  if [[ ${PEER_HEADERS:-0} == 1 ]]; then
    printf '  unique-id-format %%[uuid()]\n  unique-id-header x-request-id\n  http-request set-header x-forwarded-proto http\n'
  fi
  printf 'backend be\n  balance roundrobin\n'
  for b in "${BACKENDS[@]}"; do IFS=: read -r name addr w <<<"$b"; printf '  server %s %s:%s proto h2 weight %s\n' "$name" "$addr" "$PORT" "$w"; done
} >"$TMP/haproxy.cfg"
mkdir -p "$TMP/nginx-proxy"
{
  echo "worker_processes 1; daemon off; master_process off; pid $TMP/nginx-proxy/pid; error_log $TMP/nginx-proxy/err;"
  echo "events { worker_connections 4096; } http { access_log off; $(temp_paths "$TMP/nginx-proxy") upstream be { keepalive 128;"
  for b in "${BACKENDS[@]}"; do IFS=: read -r name addr w <<<"$b"; echo "server $addr:$PORT weight=$w;"; done
  peer_headers=""
  [[ ${PEER_HEADERS:-0} == 1 ]] && peer_headers='grpc_set_header x-request-id $request_id; grpc_set_header x-forwarded-proto http;'
  echo "} server { listen $NGINX_ADDR:$NGINX_PORT http2; keepalive_requests 1000000; location / { $peer_headers grpc_pass grpc://be; } } }"
} >"$TMP/nginx-proxy/nginx.conf"

if [[ $NET == node ]]; then
  start_sluiced
else
  "$SLUICE" --config-dir "$TMP/sluice" --listen "$SLUICE_ADDR:$PORT=productpage:$PORT" --workers 1 >"$TMP/sluice.log" 2>&1 &
fi
PIDS+=($!); SLUICE_PID=$!; wait_port "$SLUICE_ADDR" "$PORT"
if [[ -n ${SLUICE_B:-} ]]; then
  [[ -x $SLUICE_B ]] || { echo "SLUICE_B=$SLUICE_B is not an executable" >&2; exit 1; }
  "$SLUICE_B" --config-dir "$TMP/sluice" --listen "127.78.0.4:$PORT=productpage:$PORT" --workers 1 >"$TMP/sluice-b.log" 2>&1 &
  PIDS+=($!); SLUICE_B_PID=$!; wait_port 127.78.0.4 "$PORT"
fi
"${IN_NODE[@]}" haproxy -f "$TMP/haproxy.cfg" -db >"$TMP/haproxy.log" 2>&1 &
PIDS+=($!); HAPROXY_PID=$!; wait_port "$HAPROXY_ADDR" "$HAPROXY_PORT"
"${IN_NODE[@]}" nginx -c "$TMP/nginx-proxy/nginx.conf" -p "$TMP/nginx-proxy" >"$TMP/nginx-proxy.stderr" 2>&1 &
PIDS+=($!); NGINX_PID=$!; wait_port "$NGINX_ADDR" "$NGINX_PORT"
if [[ -n ${PROXY_CPU:-} ]]; then
  cap_cpu sluice "$SLUICE_PID" "$PROXY_CPU"
  [[ -z ${SLUICE_B:-} ]] || cap_cpu sluice-b "$SLUICE_B_PID" "$PROXY_CPU"
  cap_cpu haproxy "$HAPROXY_PID" "$PROXY_CPU"
  cap_cpu nginx "$NGINX_PID" "$PROXY_CPU"
fi

# h2c NAME ADDR:PORT ARGS...: h2load (prior knowledge) at http://ADDR:PORT/,
# bounded by -n or -D in ARGS; its summary in $TMP/h2load.NAME.out.
h2c() {
  local name=$1 addr=$2
  shift 2
  timeout $((DURATION + 60)) "${IN_CLIENT[@]}" h2load "$@" "http://$addr/" >"$TMP/h2load.$name.out" 2>&1 ||
    { echo "h2load against $name failed:" >&2; cat "$TMP/h2load.$name.out" >&2; exit 1; }
}
# "PROTOCOL DONE ERRORS" from an h2load summary: the negotiated protocol,
# requests done, and requests errored or timed out (non-2xx answers are
# counted from the per-request log).
h2load_summary() {
  awk '/^Application protocol:/ { proto = $3 }
       /^requests:/ { done = $6; bad = $12 + $14 }
       END { print (proto ? proto : "none"), done + 0, bad + 0 }' "$1"
}

echo "sanity ($PROBES requests through each proxy, counted at the backends):"
for p in sluice:$SLUICE_ADDR:$PORT ${SLUICE_B:+sluice-b:127.78.0.4:$PORT} haproxy:$HAPROXY_ADDR:$HAPROXY_PORT \
         nginx:$NGINX_ADDR:$NGINX_PORT; do
  h2c "probe-${p%%:*}" "${p#*:}" -n "$PROBES" -c 4 -m "$STREAMS" -H "x-bench-probe: ${p%%:*}"
  read -r proto _ _ < <(h2load_summary "$TMP/h2load.probe-${p%%:*}.out")
  read -r _ n v1 protos < <(probe_split "${p%%:*}")
  printf '  %-8s client %s, backends saw %s requests (%s), v1 share %s%% (70 expected)\n' "${p%%:*}" "$proto" "$n" "$protos" "$v1"
done

# data_segments NAME SS_FILTER...: the data segments sent so far on the
# established connections the ss filter selects, in the namespace where
# NAME's sending side is (node path; the loopback path has one namespace).
data_segments() {
  local -a in_ns=("${IN_NODE[@]}")
  [[ $1 == direct-server ]] && in_ns=("${IN_DIRECT_SERVER[@]}")
  [[ $1 == direct-client ]] && in_ns=("${IN_CLIENT[@]}")
  shift
  "${in_ns[@]}" ss -tinH state established "$@" |
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^data_segs_out:/) { split($i, a, ":"); n += a[2] } } END { print n + 0 }'
}
# client_segments NAME ADDR:PORT: on the connections whose local end is
# ADDR:PORT (the proxy's side of h2load's; for `direct`, the backend's).
client_segments() {
  local ns=proxy
  [[ $1 == direct ]] && ns=direct-server
  data_segments "$ns" "( sport = :${2##*:} )" src "${2%:*}"
}
# backend_segments NAME: on the connections to the backends (a proxy's
# upstream connections; for `direct`, h2load's own).
backend_segments() {
  local b name addr filter="" ns=proxy
  [[ $1 == direct ]] && ns=direct-client
  for b in "${BACKENDS[@]}"; do
    IFS=: read -r name addr _ <<<"$b"
    filter+="${filter:+ or }dst $addr"
  done
  data_segments "$ns" "( dport = :$PORT ) and ( $filter )"
}

# backend_ticks: the CPU ticks the backends (nginx, one process each) have used.
backend_ticks() {
  local b name t=0
  for b in "${BACKENDS[@]}"; do
    IFS=: read -r name _ <<<"$b"
    t=$((t + $(cpu_ticks "$(cat "$TMP/$name/pid")")))
  done
  echo "$t"
}

# run NAME ADDR:PORT PID: closed-loop h2load against ADDR:PORT; PID is the proxy (empty: direct).
run() {
  local name=$1 addr=$2 pid=$3 before after node_before node_after backends_before perf_pid="" seg_pid="" s0 s1 t0 t1 u0 u1 proto completed bad
  h2c "$name" "$addr" -t "$THREADS" -c "$CLIENTS" -m "$STREAMS" -D 2   # warm-up: connections and pools
  rm -f "$TMP/h2load.$name.log"   # h2load appends to its log file
  [[ -n $pid ]] && before=$(cpu_ticks "$pid")
  node_before=$(node_ticks)
  backends_before=$(backend_ticks)
  if [[ ${PERF:-0} == 1 && $name == sluice && $round == "$ROUNDS" ]]; then
    perf record -q ${PERF_CALL_GRAPH:+--call-graph $PERF_CALL_GRAPH} -g -p "$pid" -o "$TMP/perf.data" -- sleep "$DURATION" 2>/dev/null & perf_pid=$!
  fi
  if ((DURATION >= 4)); then
    {
      sleep 2
      s0=$(client_segments "$name" "$addr"); u0=$(backend_segments "$name"); t0=$(date +%s%6N)
      sleep $((DURATION - 3))
      s1=$(client_segments "$name" "$addr"); u1=$(backend_segments "$name"); t1=$(date +%s%6N)
      echo "$s0 $s1 $t0 $t1 $u0 $u1" >"$TMP/segments.$name"
    } & seg_pid=$!
  fi
  h2c "$name" "$addr" -t "$THREADS" -c "$CLIENTS" -m "$STREAMS" -D "$DURATION" --log-file="$TMP/h2load.$name.log"
  if [[ -n $seg_pid ]]; then
    wait "$seg_pid"
    read -r s0 s1 t0 t1 u0 u1 <"$TMP/segments.$name"
    awk -v t0="$t0" -v t1="$t1" -v segs="$((s1 - s0))" -v usegs="$((u1 - u0))" -v name="$name" -v up="$TMP/upstream-segments" \
      '$1 >= t0 && $1 < t1 { n++ }
      END { if (n > 0) { printf "%s %.3f 0\n", name, segs / n; printf "%s %.3f 0\n", name, usegs / n >>up } }' \
      "$TMP/h2load.$name.log" >>"$TMP/segments"
  fi
  [[ -n $pid ]] && after=$(cpu_ticks "$pid")
  node_after=$(node_ticks)
  [[ -n $perf_pid ]] && wait "$perf_pid"
  read -r proto completed bad < <(h2load_summary "$TMP/h2load.$name.out")
  [[ $proto == h2c ]] || { echo "$name: h2load negotiated '$proto', not h2c" >&2; exit 1; }
  awk -v ticks="$(($(backend_ticks) - backends_before))" -v hz="$(getconf CLK_TCK)" -v n="$completed" -v name="$name" \
    'BEGIN { if (n > 0) printf "%s %.2f 0\n", name, ticks / hz * 1e6 / n }' >>"$TMP/backend-cpu"
  h2load_log_row "$name" "$DURATION" "$TMP/h2load.$name.log" |
    awk -v ticks="${after:-0}" -v base="${before:-0}" -v hz="$(getconf CLK_TCK)" -v n="$completed" -v bad="$bad" \
      -v node="$((node_after - node_before))" '
      { cpu = (ticks > 0 && n > 0) ? (ticks - base) / hz * 1e6 / n : 0
        printf "%s %s %s %s %.2f %.2f %d\n", $1, $2, $3, $4, cpu, (n > 0 ? node / hz * 1e6 / n : 0), $5 + bad }' >>"$TMP/results"
}
PROXIES=("sluice $SLUICE_ADDR:$PORT $SLUICE_PID")
[[ -z ${SLUICE_B:-} ]] || PROXIES+=("sluice-b 127.78.0.4:$PORT $SLUICE_B_PID")
PROXIES+=("haproxy $HAPROXY_ADDR:$HAPROXY_PORT $HAPROXY_PID" "nginx $NGINX_ADDR:$NGINX_PORT $NGINX_PID")
for ((round = 1; round <= ROUNDS; round++)); do
  run direct "$DIRECT_ADDR:$PORT" ""
  for ((slot = 0; slot < ${#PROXIES[@]}; slot++)); do   # rotated: round r starts with the r-th proxy
    read -r p_name p_addr p_pid <<<"${PROXIES[(slot + round - 1) % ${#PROXIES[@]}]}"
    run "$p_name" "$p_addr" "$p_pid"
  done
done
medians "$TMP/results" >"$TMP/medians"

# fixed NAME ADDR:PORT RATE: h2load at RATE requests/s in total; appends "NAME achieved p50 p99 errors".
fixed() {
  local name=$1 addr=$2 rate=$3
  rm -f "$TMP/h2load.fixed-$name.log"
  h2c "fixed-$name" "$addr" -t "$THREADS" -c "$CLIENTS" -m "$STREAMS" -D "$DURATION" \
    --rps="$(awk -v r="$rate" -v c="$CLIENTS" 'BEGIN {printf "%.2f", r / c}')" --log-file="$TMP/h2load.fixed-$name.log"
  h2load_log_row "$name" "$DURATION" "$TMP/h2load.fixed-$name.log" >>"$TMP/fixed"
}
RATE=$(awk -v share="$SHARE" '$1 == "haproxy" {printf "%d", $2 * share}' "$TMP/medians")
# Rotated as the closed loop is, so that no proxy always runs right after
# another's: nginx falls behind the offered rate, and in a fixed order
# sluice always came right after it (docs/benchmarks.md, "The node path").
FIXED_PROXIES=("sluice $SLUICE_ADDR:$PORT" "haproxy $HAPROXY_ADDR:$HAPROXY_PORT" "nginx $NGINX_ADDR:$NGINX_PORT")
if ((RATE > 0)); then
  for ((round = 1; round <= ROUNDS; round++)); do
    for ((slot = 0; slot < ${#FIXED_PROXIES[@]}; slot++)); do
      read -r p_name p_addr <<<"${FIXED_PROXIES[(slot + round - 1) % ${#FIXED_PROXIES[@]}]}"
      fixed "$p_name" "$p_addr" "$RATE"
    done
  done
fi
fixed_title=""
((RATE > 0)) && fixed_title="fixed rate: $RATE requests/s offered to each ($SHARE x HAProxy's closed-loop median), same h2load shape, ${DURATION}s, medians over rounds"
if [[ -n ${SLUICE_B:-} ]]; then
  awk '{rps[$1] = $2; p99[$1] = $4; cpu[$1] = $5}
    END { printf "sluice/sluice-b (%s): throughput %.2fx, p99 %.2fx, CPU/req %.2fx\n", b, rps["sluice"] / rps["sluice-b"], p99["sluice"] / p99["sluice-b"], cpu["sluice"] / cpu["sluice-b"] }' \
    b="$SLUICE_B" "$TMP/medians" >"$TMP/ab"
fi
report "HTTP/2 (h2c) proxy benchmark ($NET path): h2load -t$THREADS -c$CLIENTS -m$STREAMS -D$DURATION h2c, 4 nginx h2c backends, 70/30, 1 worker per proxy${PROXY_CPU:+ capped at $PROXY_CPU of a CPU each (period ${CPU_CAP_PERIOD_US:-10000} µs)}, ${ROUNDS} round(s) (medians)" \
  "$fixed_title" "$(basename "$SLUICE")" goal
[[ -z ${SLUICE_B:-} ]] || cat "$TMP/ab"
# per_proxy_medians TITLE FILE: "TITLE: NAME MEDIAN ..." from FILE's "NAME VALUE 0" rows
# (one per round; `medians` takes the last column for an error count).
per_proxy_medians() {
  printf '%s:' "$1"
  medians "$2" | awk '{ printf " %s %s", $1, $2 } END { print "" }'
}
[[ -s $TMP/segments ]] && per_proxy_medians "TCP data segments to h2load per request (median over rounds)" "$TMP/segments"
# nginx is left out: its upstream connections open and close during the
# run (one stream each, more than its keepalive cache holds), and the sum
# over the connections alive at each end of the window misses them.
grep -v '^nginx ' "$TMP/upstream-segments" >"$TMP/upstream-segments.kept" || true
[[ -s $TMP/upstream-segments.kept ]] &&
  per_proxy_medians "TCP data segments to the backends per request (median over rounds; nginx's churning connections not counted)" "$TMP/upstream-segments.kept"
[[ -s $TMP/backend-cpu ]] && per_proxy_medians "the backends' CPU µs per request (median over rounds)" "$TMP/backend-cpu"
true

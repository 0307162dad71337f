#!/usr/bin/env bash
# L7 proxy benchmark: sluice vs HAProxy 2.6 vs nginx 1.22 (Debian), each a
# 70/30 weighted HTTP/1.1 proxy over the same four nginx backends, one
# worker each, driven by wrk with 64 keep-alive connections; plus the direct
# no-proxy ceiling (wrk straight at one backend). Prints requests/s, p50,
# p99, proxy CPU per request and the machine's CPU per request (node µs/req:
# proxy, wrk, backends and kernel, niced work left out), and ratios against HAProxy and nginx,
# all measured in the same run. With ROUNDS > 1 the three proxies are
# measured in turn ROUNDS times, so that a burst of load from elsewhere on a
# shared machine hits all of them, and each figure is the median over the
# rounds; the order rotates (sluice, haproxy, nginx; then haproxy, nginx,
# sluice; ...) so that each proxy takes every place.
#
# Closed-loop p99 mixes two things: a proxy that serves more requests also
# loads wrk and the backends on the same 2 CPUs more. So a second phase
# (h2load, HTTP/1.1, 64 connections, -t2) offers every proxy the same fixed
# rate — FIXED_RATE_SHARE (default 0.8) of HAProxy's median closed-loop
# throughput — and reports the achieved rate and p50/p99 from h2load's
# per-request log: latency at equal load.
#
# PATH (third argument) says where the traffic goes:
#   loopback  every process on 127.0.0.0/8 in the caller's namespace; sluice
#             is the standalone proxy (sluice-l7-proxy) on its own listener.
#   node      the path users have: wrk/h2load in a client namespace, the
#             proxies in a node namespace, each nginx backend in its own
#             namespace behind its own veth (tests/integration/lib/topology.sh).
#             sluice is `sluiced` with XDP on every node veth (nothing on the
#             peers), and the client connects to the service VIP, which the
#             sk_lookup program hands to the proxy; HAProxy and nginx listen
#             on the node's client-side address. Needs root. With PERF=1,
#             sluiced is also sampled with `perf record` during its last
#             closed-loop round and the top of `perf report` is printed
#             (PERF_KEEP=FILE keeps the perf.data for `perf report -i FILE`).
#             SLUICE_XDP=0 starts sluiced without XDP on the veths (the L7
#             VIP needs only sk_lookup): no process on the node has it.
#
# PROXY_CPU=SHARE (e.g. 0.5) caps each proxy at SHARE of one CPU (cap_cpu in
# l7_bench_lib.sh), so that the proxy, not the machine, is the bottleneck of
# its run; the direct row is never capped.
#
#   tools/bench/l7_proxy.sh [DURATION_SECONDS [ROUNDS [loopback|node]]]   (default 10 1 loopback)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10}
ROUNDS=${2:-1}
NET=${3:-loopback}
BUILD=${MESON_BUILD_ROOT:-build}
case $NET in
  loopback) SLUICE=$BUILD/userspace/proxy/sluice-l7-proxy ;;
  node) SLUICE=$BUILD/userspace/agent/sluiced
        [[ $EUID -eq 0 ]] || { echo "the node path needs root (network namespaces, XDP)" >&2; exit 1; } ;;
  *) echo "PATH must be loopback or node, not '$NET'" >&2; exit 1 ;;
esac
for tool in wrk h2load nginx haproxy; do command -v $tool >/dev/null || { echo "missing $tool" >&2; exit 1; }; done
[[ -x $SLUICE ]] || { echo "build $SLUICE first (ninja -C $BUILD)" >&2; exit 1; }
# shellcheck source=l7_bench_lib.sh
source tools/bench/l7_bench_lib.sh
check_proxy_cpu

TMP=$(mktemp -d /tmp/slc-l7-bench.XXXXXX)
PIDS=()
cleanup() {
  stop_pids
  uncap_cpu
  [[ -n ${PIN:-} && -d $PIN ]] && rm -rf -- "$PIN"
  rm -rf "$TMP"
}
PORT=38080
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ $NET == node ]]; then
  node_path slcb-l7
else
  trap cleanup EXIT
  IN_CLIENT=() IN_NODE=()
  in_backend() { IN_BACKEND=(); }
  BACKENDS=(v1-a:127.77.11.2:35 v1-b:127.77.12.2:35 v2-a:127.77.13.2:15 v2-b:127.77.14.2:15)
  SLUICE_ADDR=127.77.0.1 HAPROXY_ADDR=127.77.0.2 NGINX_ADDR=127.77.0.3 DIRECT_ADDR=127.77.11.2
  HAPROXY_PORT=$PORT NGINX_PORT=$PORT
fi

start_backends "$PORT"
sluice_config "$SLUICE_ADDR" "$PORT" HTTP

# HAProxy and nginx: the same 70/30 split as server weights (35+35 / 15+15).
{
  printf 'global\n  nbthread 1\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  http-reuse always\n'
  printf 'frontend fe\n  bind %s:%s\n  default_backend be\nbackend be\n  balance roundrobin\n' "$HAPROXY_ADDR" "$HAPROXY_PORT"
  for b in "${BACKENDS[@]}"; do IFS=: read -r name addr w <<<"$b"; printf '  server %s %s:%s weight %s\n' "$name" "$addr" "$PORT" "$w"; done
} >"$TMP/haproxy.cfg"
mkdir -p "$TMP/nginx-proxy"
{
  echo "worker_processes 1; daemon off; master_process off; pid $TMP/nginx-proxy/pid; error_log $TMP/nginx-proxy/err;"
  echo "events { worker_connections 4096; } http { access_log off; $(temp_paths "$TMP/nginx-proxy") upstream be { keepalive 128;"
  for b in "${BACKENDS[@]}"; do IFS=: read -r name addr w <<<"$b"; echo "server $addr:$PORT weight=$w;"; done
  echo "} server { listen $NGINX_ADDR:$NGINX_PORT; keepalive_requests 1000000; location / { proxy_pass http://be;"
  echo "proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }"
} >"$TMP/nginx-proxy/nginx.conf"

# run NAME ADDR:PORT PID: wrk against ADDR:PORT; PID is the proxy (empty: direct).
run() {
  local name=$1 addr=$2 pid=$3 before after perf_pid="" node_before node_after
  "${IN_CLIENT[@]}" wrk -t2 -c64 -d2s "http://$addr/" >/dev/null   # warm-up: connections and pools
  [[ -n $pid ]] && before=$(cpu_ticks "$pid")
  node_before=$(node_ticks)
  if [[ ${PERF:-0} == 1 && $name == sluice && $round == "$ROUNDS" ]]; then
    perf record -q -g -p "$pid" -o "$TMP/perf.data" -- sleep "$DURATION" 2>/dev/null & perf_pid=$!
  fi
  "${IN_CLIENT[@]}" wrk -t2 -c64 -d"${DURATION}s" --latency "http://$addr/" >"$TMP/wrk.$name"
  [[ -n $pid ]] && after=$(cpu_ticks "$pid")
  node_after=$(node_ticks)
  [[ -n $perf_pid ]] && wait "$perf_pid"
  awk -v name="$name" -v ticks="${after:-0}" -v base="${before:-0}" -v hz="$(getconf CLK_TCK)" \
    -v node="$((node_after - node_before))" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /requests in/ { n = $1 } /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    /Non-2xx/ { errors += $NF } /Socket errors/ { errors += 1 }
    END { cpu = (ticks > 0) ? (ticks - base) / hz * 1e6 / n : 0
          printf "%s %.0f %.3f %.3f %.2f %.2f %d\n", name, rps, p50, p99, cpu, node / hz * 1e6 / n, errors }' "$TMP/wrk.$name" >>"$TMP/results"
}

if [[ $NET == node ]]; then
  start_sluiced
else
  "$SLUICE" --config-dir "$TMP/sluice" --listen "$SLUICE_ADDR:$PORT=productpage:$PORT" --workers 1 >"$TMP/sluice.log" 2>&1 &
fi
PIDS+=($!); SLUICE_PID=$!; wait_port "$SLUICE_ADDR" "$PORT"
"${IN_NODE[@]}" haproxy -f "$TMP/haproxy.cfg" -db >"$TMP/haproxy.log" 2>&1 &
PIDS+=($!); HAPROXY_PID=$!; wait_port "$HAPROXY_ADDR" "$HAPROXY_PORT"
"${IN_NODE[@]}" nginx -c "$TMP/nginx-proxy/nginx.conf" -p "$TMP/nginx-proxy" >"$TMP/nginx-proxy.stderr" 2>&1 &
PIDS+=($!); NGINX_PID=$!; wait_port "$NGINX_ADDR" "$NGINX_PORT"
if [[ -n ${PROXY_CPU:-} ]]; then   # sluiced's other threads (agent, admin) are idle here
  cap_cpu sluice "$SLUICE_PID" "$PROXY_CPU"
  cap_cpu haproxy "$HAPROXY_PID" "$PROXY_CPU"
  cap_cpu nginx "$NGINX_PID" "$PROXY_CPU"
fi
PROXIES=("sluice $SLUICE_ADDR:$PORT $SLUICE_PID" "haproxy $HAPROXY_ADDR:$HAPROXY_PORT $HAPROXY_PID"
         "nginx $NGINX_ADDR:$NGINX_PORT $NGINX_PID")
for ((round = 1; round <= ROUNDS; round++)); do
  run direct "$DIRECT_ADDR:$PORT" ""
  for ((slot = 0; slot < ${#PROXIES[@]}; slot++)); do   # rotated: round r starts with the r-th proxy
    read -r p_name p_addr p_pid <<<"${PROXIES[(slot + round - 1) % ${#PROXIES[@]}]}"
    run "$p_name" "$p_addr" "$p_pid"
  done
done
medians "$TMP/results" >"$TMP/medians"

# fixed NAME ADDR:PORT RATE: h2load at RATE requests/s in total; appends "NAME achieved p50 p99".
fixed() {
  local name=$1 addr=$2 rate=$3
  rm -f "$TMP/h2load.$name"   # h2load appends to its log file
  "${IN_CLIENT[@]}" h2load --h1 -t2 -c64 --rps="$(awk -v r="$rate" 'BEGIN {printf "%.2f", r / 64}')" -D "$DURATION" \
    --log-file="$TMP/h2load.$name" "http://$addr/" >"$TMP/h2load.$name.out" 2>&1
  h2load_log_row "$name" "$DURATION" "$TMP/h2load.$name" >>"$TMP/fixed"
}
RATE=$(awk -v share="${FIXED_RATE_SHARE:-0.8}" '$1 == "haproxy" {printf "%d", $2 * share}' "$TMP/medians")
# Rotated as the closed loop is, so that no proxy always runs right after
# another's (nginx can fall behind the offered rate and leave a backlog).
FIXED_PROXIES=("sluice $SLUICE_ADDR:$PORT" "haproxy $HAPROXY_ADDR:$HAPROXY_PORT" "nginx $NGINX_ADDR:$NGINX_PORT")
for ((round = 1; round <= ROUNDS; round++)); do
  for ((slot = 0; slot < ${#FIXED_PROXIES[@]}; slot++)); do
    read -r p_name p_addr <<<"${FIXED_PROXIES[(slot + round - 1) % ${#FIXED_PROXIES[@]}]}"
    fixed "$p_name" "$p_addr" "$RATE"
  done
done
report "L7 proxy benchmark ($NET path): wrk -t2 -c64 -d${DURATION}s keep-alive, 4 nginx backends, 70/30, 1 worker per proxy${PROXY_CPU:+ capped at $PROXY_CPU of a CPU each (period ${CPU_CAP_PERIOD_US:-10000} µs)}, ${ROUNDS} round(s) (medians)" \
  "fixed rate: h2load --h1 -t2 -c64, $RATE requests/s offered to each (${FIXED_RATE_SHARE:-0.8} x HAProxy's closed-loop median), ${DURATION}s, medians over rounds" \
  "$(basename "$SLUICE")"

#!/usr/bin/env bash
# L7 proxy benchmark: sluice vs HAProxy 2.6 vs nginx 1.22 (Debian), each a
# 70/30 weighted HTTP/1.1 proxy over the same four nginx backends, one
# worker each, driven by wrk with 64 keep-alive connections; plus the direct
# no-proxy ceiling (wrk straight at one backend). Prints requests/s, p50,
# p99 and proxy CPU per request, and ratios against HAProxy and nginx,
# all measured in the same run.
#
#   tools/bench/l7_proxy.sh [DURATION_SECONDS]   (default 10; run as any user)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10}
BUILD=${MESON_BUILD_ROOT:-build}
SLUICE=$BUILD/userspace/proxy/sluice-l7-proxy
for tool in wrk nginx haproxy; do command -v $tool >/dev/null || { echo "missing $tool" >&2; exit 1; }; done
[[ -x $SLUICE ]] || { echo "build $SLUICE first (ninja -C $BUILD)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/slc-l7-bench.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
PORT=38080
BACKENDS=(v1-a:127.77.11.2:35 v1-b:127.77.12.2:35 v2-a:127.77.13.2:15 v2-b:127.77.14.2:15)

wait_port() {
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing listens on $1:$2" >&2; cat "$TMP"/*.stderr "$TMP"/*.log >&2 2>/dev/null; exit 1
}
temp_paths() { echo "client_body_temp_path $1/b; proxy_temp_path $1/p; fastcgi_temp_path $1/f; uwsgi_temp_path $1/u; scgi_temp_path $1/s;"; }

for b in "${BACKENDS[@]}"; do
  IFS=: read -r name addr _ <<<"$b"
  mkdir -p "$TMP/$name"
  cat >"$TMP/$name/nginx.conf" <<NGX
worker_processes 1; daemon off; master_process off; pid $TMP/$name/pid; error_log $TMP/$name/err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; $(temp_paths "$TMP/$name")
  server { listen $addr:$PORT; location / { add_header x-backend $name; return 200 "$name\n"; } } }
NGX
  nginx -c "$TMP/$name/nginx.conf" -p "$TMP/$name" 2>"$TMP/$name.stderr" & PIDS+=($!)
  wait_port "$addr" "$PORT"
done

# sluice: the Istio config.
mkdir -p "$TMP/sluice"
{
  cat <<YAML
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: productpage}
spec:
  hosts: [productpage]
  addresses: [10.96.0.10]
  ports: [{number: $PORT, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: productpage}}
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - {destination: {host: productpage, subset: v1}, weight: 70}
    - {destination: {host: productpage, subset: v2}, weight: 30}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
YAML
  for b in "${BACKENDS[@]}"; do
    IFS=: read -r name addr _ <<<"$b"
    printf -- '---\napiVersion: networking.istio.io/v1beta1\nkind: WorkloadEntry\nmetadata: {name: %s}\nspec: {address: %s, labels: {app: productpage, version: %s}}\n' \
      "$name" "$addr" "${name%-*}"
  done
} >"$TMP/sluice/productpage.yaml"

# HAProxy and nginx: the same 70/30 split as server weights (35+35 / 15+15).
{
  printf 'global\n  nbthread 1\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  http-reuse always\n'
  printf 'frontend fe\n  bind 127.77.0.2:%s\n  default_backend be\nbackend be\n  balance roundrobin\n' "$PORT"
  for b in "${BACKENDS[@]}"; do IFS=: read -r name addr w <<<"$b"; printf '  server %s %s:%s weight %s\n' "$name" "$addr" "$PORT" "$w"; done
} >"$TMP/haproxy.cfg"
mkdir -p "$TMP/nginx-proxy"
{
  echo "worker_processes 1; daemon off; master_process off; pid $TMP/nginx-proxy/pid; error_log $TMP/nginx-proxy/err;"
  echo "events { worker_connections 4096; } http { access_log off; $(temp_paths "$TMP/nginx-proxy") upstream be { keepalive 128;"
  for b in "${BACKENDS[@]}"; do IFS=: read -r name addr w <<<"$b"; echo "server $addr:$PORT weight=$w;"; done
  echo "} server { listen 127.77.0.3:$PORT; keepalive_requests 1000000; location / { proxy_pass http://be;"
  echo "proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }"
} >"$TMP/nginx-proxy/nginx.conf"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME ADDR PID: wrk against ADDR; PID is the proxy (empty: direct).
run() {
  local name=$1 addr=$2 pid=$3 before after
  wrk -t2 -c64 -d2s "http://$addr:$PORT/" >/dev/null   # warm-up: connections and pools
  [[ -n $pid ]] && before=$(cpu_ticks "$pid")
  wrk -t2 -c64 -d"${DURATION}s" --latency "http://$addr:$PORT/" >"$TMP/wrk.$name"
  [[ -n $pid ]] && after=$(cpu_ticks "$pid")
  awk -v name="$name" -v ticks="${after:-0}" -v base="${before:-0}" -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /requests in/ { n = $1 } /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    /Non-2xx/ { errors += $NF } /Socket errors/ { errors += 1 }
    END { cpu = (ticks > 0) ? (ticks - base) / hz * 1e6 / n : 0
          printf "%s %.0f %.3f %.3f %.2f %d\n", name, rps, p50, p99, cpu, errors }' "$TMP/wrk.$name" >>"$TMP/results"
}

run direct 127.77.11.2 ""
"$SLUICE" --config-dir "$TMP/sluice" --listen "127.77.0.1:$PORT=productpage:$PORT" --workers 1 2>"$TMP/sluice.log" &
PIDS+=($!); wait_port 127.77.0.1 "$PORT"; run sluice 127.77.0.1 "${PIDS[-1]}"
haproxy -f "$TMP/haproxy.cfg" -db 2>"$TMP/haproxy.log" &
PIDS+=($!); wait_port 127.77.0.2 "$PORT"; run haproxy 127.77.0.2 "${PIDS[-1]}"
nginx -c "$TMP/nginx-proxy/nginx.conf" -p "$TMP/nginx-proxy" &
PIDS+=($!); wait_port 127.77.0.3 "$PORT"; run nginx 127.77.0.3 "${PIDS[-1]}"

echo "L7 proxy benchmark: wrk -t2 -c64 -d${DURATION}s keep-alive, 4 nginx backends, 70/30, 1 worker per proxy"
echo "kernel $(uname -r), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-8s %12s %9s %9s %14s %7s\n' proxy "requests/s" "p50 ms" "p99 ms" "CPU µs/req" errors
while read -r name rps p50 p99 cpu errors; do
  printf '%-8s %12s %9s %9s %14s %7s\n' "$name" "$rps" "$p50" "$p99" "$([[ $name == direct ]] && echo - || echo "$cpu")" "$errors"
done <"$TMP/results"
awk '{rps[$1] = $2; p99[$1] = $4; cpu[$1] = $5}
  END {
    printf "sluice/haproxy: throughput %.2fx, p99 %.2fx, CPU/req %.2fx\n", rps["sluice"] / rps["haproxy"], p99["sluice"] / p99["haproxy"], cpu["sluice"] / cpu["haproxy"]
    printf "sluice/nginx:   throughput %.2fx, p99 %.2fx, CPU/req %.2fx\n", rps["sluice"] / rps["nginx"], p99["sluice"] / p99["nginx"], cpu["sluice"] / cpu["nginx"]
    printf "sluice/direct:  throughput %.2fx of the no-proxy ceiling\n", rps["sluice"] / rps["direct"]
  }' "$TMP/results"

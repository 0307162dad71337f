#!/usr/bin/env bash
# Memory of the L7 proxy per idle keep-alive client connection, and whether
# it goes back after they close (docs/benchmarks.md, "L7 idle connections").
#
# sluice-l7-proxy (standalone, 2 workers) on 127.78.0.1:18080 in front of one
# nginx; tools/bench/l7_idle_clients.py first warms it (WARM connections of
# one request each, so the provided receive buffers and pools have been used:
# the baseline is a proxy that has served traffic), then reads VmRSS idle
# (baseline), opens N connections that each make one request and stay open
# and idle, reads VmRSS, closes them all and reads VmRSS again after 3 s.
# Prints the three readings, KiB per connection ((open - baseline) / N) and
# both ratios against the baseline. Everything is on loopback; the run is
# bounded by the client's --timeout.
#
# Usage: tools/bench/l7_idle_memory.sh [N] [WARM]   (defaults 10000, 4000)
set -euo pipefail
n=${1:-10000}
warm=${2:-4000}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${MESON_BUILD_ROOT:-$src/build}
proxy_bin=$build/userspace/proxy/sluice-l7-proxy
clients=$src/tools/bench/l7_idle_clients.py
command -v nginx >/dev/null || { echo "nginx is needed" >&2; exit 1; }
[[ -x $proxy_bin ]] || { echo "$proxy_bin is not built" >&2; exit 1; }
tmp=$(mktemp -d /tmp/slc-idlemem.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

mkdir -p "$tmp/nginx" "$tmp/config"
cat >"$tmp/nginx/nginx.conf" <<NGX
worker_processes 1;
master_process off;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/nginx/body; proxy_temp_path $tmp/nginx/proxy; fastcgi_temp_path $tmp/nginx/fcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi; scgi_temp_path $tmp/nginx/scgi;
  server { listen 127.78.1.2:18081; location / { return 200 "ok\n"; } }
}
NGX
nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" 2>"$tmp/nginx/stderr" &
pids+=($!)
cat >"$tmp/config/service.yaml" <<YAML
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  ports:
  - {number: 18081, name: http, protocol: HTTP}
  resolution: STATIC
  endpoints:
  - {address: 127.78.1.2}
YAML
nice "$proxy_bin" --workers 2 --config-dir "$tmp/config" --listen "127.78.0.1:18080=productpage:18081" \
  2>"$tmp/proxy.log" &
proxy_pid=$!
pids+=($proxy_pid)
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.78.0.1/18080) 2>/dev/null && break; sleep 0.05; done

echo "# sluice-l7-proxy, 2 workers, $(nproc) CPUs, $(uname -r), commit $(git -C "$src" rev-parse --short HEAD)"
python3 "$clients" --connect 127.78.0.1:18080 --count "$warm" --pid "$proxy_pid" --settle 0.5 --timeout 120 >/dev/null
python3 "$clients" --connect 127.78.0.1:18080 --count "$n" --pid "$proxy_pid" --settle 3 --timeout 300 >"$tmp/result.json"
python3 - "$tmp/result.json" "$n" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); n = int(sys.argv[2])
b, o, c = r["baseline_kib"], r["open_kib"], r["closed_kib"]
print(f"connections asked {n}, open and idle {r['opened']}, refused {r['refused']}, failed {r['failed']}")
print(f"VmRSS baseline (idle, warmed)   {b/1024:8.1f} MiB")
print(f"VmRSS at {r['opened']:>6} idle connections {o/1024:8.1f} MiB   {o/b:5.2f}x baseline")
print(f"VmRSS 3 s after they closed     {c/1024:8.1f} MiB   {c/b:5.2f}x baseline")
print(f"per idle connection             {(o-b)/max(r['opened'],1):8.2f} KiB")
PY

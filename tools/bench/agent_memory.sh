#!/usr/bin/env bash
# Memory of sluiced (VmRSS now and VmHWM, the peak, from /proc/PID/status)
# with the productpage example on the agent topology of
# tests/integration/agent_lib.sh (70/30 v1/v2, XDP on 5 veths, 2 workers):
#   idle, a few seconds after /ready;
#   under L7 load: wrk -t2 -c64 (keep-alive) for DURATION s through the VIP
#     10.96.0.10:9080, VmRSS sampled every 0.5 s (the largest sample shown);
#   idle again, 2 s after the load;
#   a big config and back: BIG services of tools/bench/config_compile_gen.py
#     (10 endpoints each, VIPs moved to 10.95.x.x) added to the watched
#     directory, and removed again; after each reload (the watcher's, seen
#     as a new version in /status) VmRSS, and VmHWM for the peak. sluiced
#     returns freed heap after a reload (malloc_trim), so RSS after the
#     removal should come back near the idle row, not stay at the peak.
# Ratios: each row against the idle row. For scale, wrk's rate through the
# proxy against the same wrk straight at one backend (productpage-v1-a), both
# in this run. The 10,000-service row comes from agent_compile_apply.sh.
#
# Usage: sudo tools/bench/agent_memory.sh [DURATION_S] [BIG]   (defaults 10, 2000; wrk is bounded by -d)
set -uo pipefail
duration=${1:-10}
big=${2:-2000}
# shellcheck source=agent_bench_lib.sh
source "$(dirname "$0")/agent_bench_lib.sh"
topo_require_cmd wrk

agent_setup agbmem
agent_write_routing "name: primary" v1 70 30
client=$(topo_ns client)

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$AGENT_PID/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$AGENT_PID/status"; }
row() {   # row LABEL RSS_KIB HWM_KIB IDLE_KIB
  python3 -c "import sys; l,r,h,i=sys.argv[1],*map(int,sys.argv[2:]);
print('  %-44s VmRSS %7.1f MiB  VmHWM %7.1f MiB  RSS %5.2fx idle' % (l, r/1024, h/1024, r/i))" "$@"
}
wrk_rate() { awk '/^Requests\/sec/ {print $2}' "$1"; }

bench_header
bench_start 200
sleep 3
idle=$(rss_kib)
echo "sluiced memory, productpage example (2 workers):"
row "idle after start" "$idle" "$(hwm_kib)" "$idle"

topo_exec "$client" wrk -t2 -c64 -d"${duration}s" --timeout 5s "http://$(topo_addr backend 1):9080/" \
  >"$AGENT_WORK/wrk-direct.txt" 2>&1
topo_exec "$client" wrk -t2 -c64 -d"${duration}s" --timeout 5s "http://10.96.0.10:9080/" >"$AGENT_WORK/wrk.txt" 2>&1 &
wrk_pid=$!
peak=0
while kill -0 "$wrk_pid" 2>/dev/null; do
  r=$(rss_kib)
  ((r > peak)) && peak=$r
  sleep 0.5
done
wait "$wrk_pid"
row "under wrk -t2 -c64 -d${duration}s (largest sample)" "$peak" "$(hwm_kib)" "$idle"
sleep 2
row "idle again, 2 s after the load" "$(rss_kib)" "$(hwm_kib)" "$idle"
direct=$(wrk_rate "$AGENT_WORK/wrk-direct.txt")
proxied=$(wrk_rate "$AGENT_WORK/wrk.txt")
echo "wrk through sluice: ${proxied:-?} req/s; straight to productpage-v1-a: ${direct:-?} req/s" \
  "(ratio $(python3 -c "print('%.2f' % (float('${proxied:-0}') / float('${direct:-1}')))"))"
grep -E "Socket errors|Non-2xx" "$AGENT_WORK/wrk.txt" | sed 's/^/  wrk via sluice: /' || true

# version_now: the serving config version from /status.
version_now() {
  agent_curl -sf "http://$AGENT_ADMIN/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'
}
# reload_and_wait BEFORE: until /status shows a version newer than BEFORE (the
# directory watcher reloads on its own), then 2 s for a second event's reload.
reload_and_wait() {
  local before=$1 deadline=$((SECONDS + 600))
  until [[ "$(version_now)" != "$before" ]]; do
    ((SECONDS < deadline)) || { echo "  no new version within 600 s; log tail:"; tail -3 "$AGENT_WORK/sluiced.log"; return 1; }
    sleep 0.5
  done
  sleep 2
}
python3 "$repo/tools/bench/config_compile_gen.py" "$AGENT_WORK/big" --services "$big" --endpoints 10 >/dev/null
sed -i 's/addresses: \[10\.96\./addresses: [10.95./' "$AGENT_WORK"/big/*.yaml
v=$(version_now)
mv "$AGENT_WORK/big" "$AGENT_WORK/config/big"
reload_and_wait "$v" && row "with $big more services (10 endpoints each)" "$(rss_kib)" "$(hwm_kib)" "$idle"
v=$(version_now)
rm -rf -- "$AGENT_WORK/config/big"
reload_and_wait "$v" && row "after they are removed again" "$(rss_kib)" "$(hwm_kib)" "$idle"

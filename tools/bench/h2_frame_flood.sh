#!/usr/bin/env bash
# What frames that carry no work cost the HTTP/2 edge: one client connection
# sends COUNT empty DATA frames (no END_STREAM), then COUNT PRIORITY frames,
# then COUNT WINDOW_UPDATE frames of increment 1 (each kind on its own
# connection, on an open POST stream; tools/bench/h2_frame_flood.py), then
# a GET on another stream of the same connection. Envoy closes such
# connections past a limit (max_consecutive_inbound_frames_with_empty_payload,
# max_inbound_priority_frames_per_stream,
# max_inbound_window_update_frames_per_data_frame_sent); sluice does not
# limit them (docs/l7-proxy.md, "Limits"): this measures what that costs.
#
# Prints per kind: the proxy's CPU per frame (every thread of
# sluice-l7-proxy, one worker, over the flood, from schedstat), the sender's own CPU per
# frame (the baseline, measured in the same run), their ratio (what a frame
# costs the proxy against what it costs the attacker to send), the time from
# the last frame to the GET's answer and whether the connection still served.
# Loopback only (127.78.0.0/16, port 38380); bounded by COUNT and a 120 s
# timeout per kind.
#
#   tools/bench/h2_frame_flood.sh [COUNT]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${1:-1000000}
BUILD=${MESON_BUILD_ROOT:-build}
SLUICE=$BUILD/userspace/proxy/sluice-l7-proxy
command -v nginx >/dev/null || { echo "missing nginx" >&2; exit 1; }
[[ -x $SLUICE ]] || { echo "build $SLUICE first (ninja -C $BUILD)" >&2; exit 1; }
# shellcheck source=l7_bench_lib.sh
source tools/bench/l7_bench_lib.sh
TMP=$(mktemp -d /tmp/slc-h2-flood.XXXXXX)
PIDS=()
cleanup() {
  stop_pids
  rm -rf "$TMP"
}
trap cleanup EXIT
IN_CLIENT=()
in_backend() { IN_BACKEND=(); }
PORT=38380
BACKENDS=(v1-a:127.78.21.2:1 v2-a:127.78.22.2:1)
start_backends "$PORT" http2
sluice_config 127.78.20.1 "$PORT" HTTP2
"$SLUICE" --config-dir "$TMP/sluice" --listen "127.78.20.1:$PORT=productpage:$PORT" --workers 1 >"$TMP/sluice.log" 2>&1 &
PIDS+=($!); SLUICE_PID=$!; wait_port 127.78.20.1 "$PORT"
# CPU nanoseconds of every thread of PID (schedstat: finer than /proc ticks).
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ n += $1 } END { print n }'; }
printf '%-14s %10s %16s %17s %14s %12s  %s\n' kind frames "proxy ns/frame" "sender ns/frame" "proxy/sender" "answer ms" connection
for kind in empty-data priority window-update; do
  before=$(cpu_ns "$SLUICE_PID")
  read -r _ frames spent answer status < <(timeout 120 python3 tools/bench/h2_frame_flood.py 127.78.20.1 "$PORT" "$kind" "$COUNT")
  after=$(cpu_ns "$SLUICE_PID")
  awk -v k="$kind" -v n="$frames" -v t="$((after - before))" -v s="$spent" -v a="$answer" -v st="$status" \
    'BEGIN { p = t / n; q = s * 1e9 / n
             printf "%-14s %10d %16.1f %17.1f %14.2f %12s  %s\n", k, n, p, q, (q > 0 ? p / q : 0), (a == "-" ? "-" : sprintf("%.1f", a * 1000)), st }'
done
echo "kernel $(uname -r), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ); proxy CPU from /proc/PID/task/*/schedstat"

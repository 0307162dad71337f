#!/usr/bin/env bash
# --max-slots-per-worker: what one worker holds at once (client
# connections, HTTP/2 streams, upstream connections) is bounded, and what it
# refuses at the bound is visible to the client and counted. One worker, 6
# slots; every request is held 400 ms by a fault delay, then aborted 503 by
# the fault (no upstream), so the streams stay in their slots together.
#  - h2load opens 1 connection with 10 concurrent streams: its connection
#    takes 1 slot and 5 streams take the other 5, so exactly 5 get their
#    503 and 5 are refused (RST_STREAM REFUSED_STREAM, which tells the
#    client nothing was processed); sluice_slot_limit_refusals_total
#    {kind="stream"} is 5.
#  - then 7 idle TCP connections: 6 stay open, the 7th is closed at accept;
#    {kind="connection"} is 1.
# Before the counter, both refusals were silent.
source "$(dirname "$0")/l7_lib.sh"
command -v h2load >/dev/null || l7_skip_or_fail "h2load not installed (nghttp2-client)"

PORT=19200
l7_nginx v1-a 127.77.11.2 "$PORT"
l7_productpage_config "$L7_TMP/config" "$PORT"
{
  l7_virtual_service <<'YAML'
  - fault:
      delay: {fixedDelay: 400ms, percentage: {value: 100}}
      abort: {httpStatus: 503, percentage: {value: 100}}
    route:
    - destination: {host: productpage, subset: v1}
YAML
  l7_subsets_rule v1
} >"$L7_TMP/config/routing.yaml"
l7_proxy "$L7_TMP/config" 127.77.0.1:19201 "$PORT" --workers 1 --max-slots-per-worker 6
# l7_wait_port's probe connection took a slot until the proxy read its close.
sleep 0.5

timeout 30 h2load -c1 -m10 -n10 http://127.77.0.1:19201/ >"$L7_TMP/h2load.txt" 2>&1
grep -E "requests:|status codes:" "$L7_TMP/h2load.txt"
grep -q "requests: 10 total, 10 started, 10 done, 0 succeeded, 10 failed, 5 errored" "$L7_TMP/h2load.txt" ||
  l7_fail "expected 5 streams answered and 5 refused (errored) of 10"
grep -q "status codes: 0 2xx, 0 3xx, 0 4xx, 5 5xx" "$L7_TMP/h2load.txt" || l7_fail "expected 5 answers 503"

# The h2load connection is gone: its slot is free again.
sleep 0.5
python3 - <<'PY' || l7_fail "expected 6 connections kept and the 7th closed at accept"
import socket, time
socks = []
for _ in range(7):
    s = socket.create_connection(("127.77.0.1", 19201), timeout=5)
    socks.append(s)
    time.sleep(0.05)
time.sleep(0.5)
closed = 0
for s in socks:
    s.settimeout(0.2)
    try:
        if s.recv(1) == b"":
            closed += 1
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed += 1
print(f"idle connections: {len(socks) - closed} kept, {closed} closed by the proxy")
for s in socks:
    s.close()
raise SystemExit(0 if closed == 1 else 1)
PY

l7_stop_proxy
grep '^sluice_slot_limit_refusals_total' "$L7_TMP/metrics.txt" || true
stream=$(awk '/^sluice_slot_limit_refusals_total\{/ && /kind="stream"/ {s += $NF} END {print s + 0}' "$L7_TMP/metrics.txt")
conn=$(awk '/^sluice_slot_limit_refusals_total\{/ && /kind="connection"/ {s += $NF} END {print s + 0}' "$L7_TMP/metrics.txt")
[[ $stream -eq 5 ]] || l7_fail "sluice_slot_limit_refusals_total{kind=\"stream\"} is $stream, expected 5"
[[ $conn -eq 1 ]] || l7_fail "sluice_slot_limit_refusals_total{kind=\"connection\"} is $conn, expected 1"
echo "PASS: at 6 slots, 5 of 10 streams refused and the 7th connection closed, each counted"

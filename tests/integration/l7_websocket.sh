#!/usr/bin/env bash
# WebSocket upgrades through the L7 proxy, as Istio allows them by default:
#  1. 40 sessions (4 at a time) through a 50/50 route: each gets a 101 with
#     the right Sec-WebSocket-Accept, the backend's first frame (sent with
#     the 101, often in the same segment), 14 echoes of 1 B .. 70,000 B
#     frames (bigger than the proxy's buffers) and a clean close; both
#     subsets serve sessions (P(all 40 on one) = 2^-39);
#  2. a session idle for longer than the route's 1 s timeout in the middle
#     survives (the timeout ends with the 101);
#  3. a backend that declines the upgrade answers 200 like any request and
#     the keep-alive connection serves the next request;
#  4. an Upgrade other than websocket (h2c) is not forwarded;
#  5. every session is counted once, with response code 101;
#  6. with --websocket-idle-timeout-ms 800, a session quiet for 0.5 s three
#     times (1.5 s in all) lives on, since traffic resets the clock, and one
#     quiet for 2 s is closed.
source "$(dirname "$0")/l7_lib.sh"

PORT=28095
WS=$L7_SRC/l7_websocket.py
for n in v1-a:11 v2-a:13; do
  python3 "$WS" server --name "${n%:*}" --listen "127.77.${n#*:}.2:$PORT" 2>"$L7_TMP/ws-${n%:*}.log" &
  L7_PIDS+=($!)
  l7_wait_port "127.77.${n#*:}.2" "$PORT"
done
l7_productpage_config "$L7_TMP/cfg" "$PORT"
l7_virtual_service >"$L7_TMP/cfg/routing.yaml" <<'YAML'
  - timeout: 1s
    route:
    - destination: {host: productpage, subset: v1}
      weight: 50
    - destination: {host: productpage, subset: v2}
      weight: 50
YAML
l7_subsets_rule v1 v2 >>"$L7_TMP/cfg/routing.yaml"
# v1-b and v2-b have no server here: keep them out of the subsets.
sed -i '/productpage-v1-b/,/version: v1}/ s/version: v1}/version: none}/; /productpage-v2-b/,/version: v2}/ s/version: v2}/version: none}/' \
  "$L7_TMP/cfg/service.yaml"
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18095 "$PORT" --workers 2
ADDR=127.77.0.1:18095

# 1. Sessions, split by the route's weights.
out=$(timeout 120 python3 "$WS" client --connect "$ADDR" --sessions 40 --parallel 4) || true
echo "40 sessions: $out"
python3 -c "
import json, sys
j = json.loads('''$out''')
ok = not j['failures'] and sum(j['backends'].values()) == 40 and j['backends'].get('v1-a', 0) > 0 and j['backends'].get('v2-a', 0) > 0
sys.exit(0 if ok else 1)" || l7_fail "WebSocket sessions failed or did not reach both subsets: $out"
echo "PASS: 40 WebSocket sessions through the proxy: 101, first frame, 14 echoes up to 70,000 B, clean close, both subsets"

# 2. Idle past the route timeout.
out=$(timeout 60 python3 "$WS" client --connect "$ADDR" --sessions 1 --pause 1.5) || true
echo "idle 1.5 s mid-session: $out"
[[ $out == *'"failures": []'* ]] || l7_fail "a WebSocket idle past the 1 s route timeout was cut: $out"
echo "PASS: a WebSocket outlives the route timeout"

# 3 and 4: a declined upgrade is an ordinary response on a reusable connection; h2c is not forwarded.
python3 - "$ADDR" <<'PY' || l7_fail "declined upgrade or h2c handling is wrong"
import json, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
f = s.makefile("rb")

def request(text):
    s.sendall(text.encode())
    status = f.readline().decode()
    length = 0
    while True:
        line = f.readline().decode().strip()
        if not line:
            break
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, f.read(length)

status, body = request("GET /decline HTTP/1.1\r\nHost: productpage\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
names = json.loads(body)
print("declined:", status.strip(), "backend saw", names)
assert status.startswith("HTTP/1.1 200"), status
assert "upgrade" in names, "the websocket upgrade was not forwarded"
status, body = request("GET /plain HTTP/1.1\r\nHost: productpage\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                       "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
names = json.loads(body)
print("h2c on the same connection:", status.strip(), "backend saw", names)
assert status.startswith("HTTP/1.1 200"), status
assert "upgrade" not in names and "http2-settings" not in names, names
PY
echo "PASS: a declined upgrade answers 200 and the connection goes on; Upgrade: h2c is not forwarded"

# 5. Every session counted once, as a 101.
l7_stop_proxy
count=$(awk '/^istio_requests_total\{/ && /response_code="101"/ {s += $NF} END {print s + 0}' "$L7_TMP/metrics.txt")
echo "istio_requests_total with response_code 101: $count"
((count == 41)) || l7_fail "expected 41 sessions counted with response code 101, got $count"
echo "PASS: each WebSocket session is one request, code 101"

# 6. The tunnel idle timeout: traffic resets it, 2 s of silence ends the tunnel.
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18098 "$PORT" --workers 1 --websocket-idle-timeout-ms 800
out=$(timeout 60 python3 "$WS" client --connect 127.77.0.1:18098 --sessions 1 --messages 8 --pause 0.5 --pauses 3) ||
  true
echo "quiet 3 x 0.5 s under an 800 ms idle timeout: $out"
[[ $out == *'"failures": []'* ]] || l7_fail "a WebSocket with traffic every 0.5 s was closed by the 800 ms idle timeout: $out"
out=$(timeout 60 python3 "$WS" client --connect 127.77.0.1:18098 --sessions 1 --pause 2) || true
echo "quiet 2 s under an 800 ms idle timeout: $out"
[[ $out == *'connection closed'* ]] || l7_fail "a WebSocket silent for 2 s outlived the 800 ms idle timeout: $out"
echo "PASS: --websocket-idle-timeout-ms closes a silent tunnel, not a busy one"

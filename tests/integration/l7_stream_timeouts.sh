#!/usr/bin/env bash
# Envoy's request_timeout and stream_idle_timeout free a stuck request's
# upstream connection. The cluster allows one upstream connection
# (maxConnections: 1) and has no route timeout; the proxy runs with
# --request-timeout-ms 1000 --stream-idle-timeout-ms 1000.
#  1. a POST whose 100-byte body trickles (1 byte per 0.2 s) gets 408 after
#     ~1 s, its upstream connection is released, and a GET sent meanwhile
#     is answered 200 within 5 s (it waited in the pool's queue);
#  2. a GET of a 64 MiB body whose client reads 1 KiB and then nothing is
#     ended once no byte moved for 1–2 s (the client's connection closed),
#     and a GET sent meanwhile is answered 200 within 5 s.
# Without the timeouts both second requests wait for the first to end (20 s
# of trickle; a response never read: forever). The metrics count one of each.
source "$(dirname "$0")/l7_lib.sh"

PORT=19190
cat >"$L7_TMP/backend.py" <<'PY'
import socketserver, sys
class H(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            line = self.rfile.readline()
            if not line:
                return
            length = 0
            while True:
                h = self.rfile.readline()
                if h in (b"\r\n", b""):
                    break
                name, _, value = h.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            self.rfile.read(length)
            if line.split()[1] == b"/big":
                size = 64 << 20
                self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
                chunk = b"x" * (1 << 20)
                try:
                    for _ in range(size >> 20):
                        self.wfile.write(chunk)
                except OSError:
                    return
            else:
                self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n")
            self.wfile.flush()
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
PY
python3 "$L7_TMP/backend.py" 127.77.11.2 "$PORT" 2>"$L7_TMP/backend.log" &
L7_PIDS+=($!)
l7_wait_port 127.77.11.2 "$PORT"
mkdir -p "$L7_TMP/config"
cat >"$L7_TMP/config/service.yaml" <<YAML
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  ports:
  - {number: $PORT, name: http, protocol: HTTP}
  resolution: STATIC
  endpoints:
  - {address: 127.77.11.2}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}
YAML
l7_virtual_service >"$L7_TMP/config/routing.yaml" <<'YAML'
  - route:
    - destination: {host: productpage}
YAML
l7_proxy "$L7_TMP/config" 127.77.0.1:19191 "$PORT" --workers 1 --request-timeout-ms 1000 \
  --stream-idle-timeout-ms 1000

# stuck_client MODE: "trickle" or "unread"; prints the status line it got (or "none") and seconds taken.
stuck_client() {
  python3 - "$1" <<'PY'
import socket, sys, time
mode = sys.argv[1]
s = socket.create_connection(("127.77.0.1", 19191), timeout=10)
start = time.monotonic()
got = b""
if mode == "trickle":
    s.sendall(b"POST / HTTP/1.1\r\nHost: productpage\r\nContent-Length: 100\r\n\r\n")
    s.setblocking(False)
    for i in range(30):   # at most 6 s
        try:
            got += s.recv(4096)
        except BlockingIOError:
            pass
        except OSError:
            break
        if got:
            break
        try:
            s.send(b"x")
        except OSError:
            break
        time.sleep(0.2)
    print((got.split(b"\r\n")[0].decode() or "none"), round(time.monotonic() - start, 1))
else:
    s.sendall(b"GET /big HTTP/1.1\r\nHost: productpage\r\n\r\n")
    got = s.recv(1024)
    time.sleep(6)   # read nothing more; then see whether the proxy closed the connection
    s.settimeout(3.0)   # drain what was queued; a closed connection then reads EOF (or a reset)
    closed = False
    drained = 0
    until = time.monotonic() + 20
    try:
        while time.monotonic() < until:
            d = s.recv(1 << 20)
            if not d:
                closed = True
                break
            drained += len(d)
    except socket.timeout:
        pass
    except OSError:
        closed = True
    print(got.split(b"\r\n")[0].decode(), drained, "closed" if closed else "open")
PY
}

stuck_client trickle >"$L7_TMP/trickle.out" &
trickle=$!
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.77.0.1:19191/ || true)
wait "$trickle" || true
echo "trickling POST: $(cat "$L7_TMP/trickle.out"); GET meanwhile: $code"
read -r _ status _ secs <"$L7_TMP/trickle.out"
[[ $status == 408 ]] || l7_fail "the trickling POST got '$(cat "$L7_TMP/trickle.out")', expected 408"
[[ $code == 200 ]] || l7_fail "the GET behind the trickling POST got '$code', expected 200 within 5 s"

stuck_client unread >"$L7_TMP/unread.out" &
unread=$!
sleep 0.5
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.77.0.1:19191/ || true)
wait "$unread" || true
echo "unread GET /big: $(cat "$L7_TMP/unread.out"); GET meanwhile: $code"
grep -q '^HTTP/1.1 200 .* closed$' "$L7_TMP/unread.out" || l7_fail "the unread response's connection was not closed"
[[ $code == 200 ]] || l7_fail "the GET behind the unread response got '$code', expected 200 within 5 s"

l7_stop_proxy
grep -E '^sluice_(request|stream_idle)_timeouts_total' "$L7_TMP/metrics.txt" || true
grep -q '^sluice_request_timeouts_total{destination_service="productpage",destination_workload=""} 1$' \
  "$L7_TMP/metrics.txt" || l7_fail "sluice_request_timeouts_total is not 1"
grep -q '^sluice_stream_idle_timeouts_total{destination_service="productpage",destination_workload=""} 1$' \
  "$L7_TMP/metrics.txt" || l7_fail "sluice_stream_idle_timeouts_total is not 1"
echo "PASS: request and stream idle timeouts release the upstream connection"

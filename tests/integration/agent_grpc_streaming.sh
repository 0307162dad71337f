#!/usr/bin/env bash
# gRPC streaming through sluiced's L7 proxy (h2c both ways), with real grpcio
# servers (tests/integration/grpc_backend.py) in the backend namespaces and a
# grpcio client (grpc_stream.py) on one channel in the client namespace:
#  - server streaming: 2,000 messages of 16 KiB arrive whole and in order,
#    then the backend's trailer;
#  - bidirectional streaming: 500 messages of 4 KiB echoed back in order;
#  - no unbounded buffering: a server stream of 1,024 x 64 KiB (64 MiB) to a
#    client that reads one message and then nothing for 8 s: sluiced's RSS
#    grows by less than 16 MiB meanwhile (HTTP/2 flow control holds the
#    backend back; a proxy that read the whole stream would grow by 64 MiB),
#    and afterwards every byte arrives, in order;
#  - cancellation: a client that cancels a 100,000-message stream after 20
#    messages: the backend's stream ends within 5 s (sluice resets the
#    upstream stream) and it sent far fewer than 100,000;
#  - istio_requests_total's grpc_response_status comes from the trailers: a
#    stream that ends NOT_FOUND after 3 messages (HTTP 200) is counted 5,
#    the OK ones 0, the cancelled one with flag DC; request_protocol grpc.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"
/usr/bin/python3 -c 'import grpc' 2>/dev/null || { echo "SKIP: python3-grpcio not installed"; exit 77; }
py=/usr/bin/python3

agent_setup grpcstream
agent_grpc_backends || exit 1

cat >"$AGENT_WORK/config/serviceentry.yaml" <<'YAML'
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  addresses: [10.96.0.10]
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  - {number: 50051, name: grpc, protocol: GRPC}
  resolution: STATIC
  workloadSelector:
    labels: {app: productpage}
YAML
# An HTTP route puts the port on the L7 plane (a port without one is
# steered per connection by XDP, and would not test the proxy at all).
agent_write_routing "name: split" v1 50 50
agent_start
shares=$(agent_curl "http://$AGENT_ADMIN/stats/prometheus" | grep '^sluice_route_configured_share{destination_service="productpage",destination_port="50051"')
agent_check "port 50051 is on the L7 plane" test -n "$(echo "$shares" | grep 'plane="l7"')"
client=$(topo_ns client)
target=10.96.0.10:50051

stream() { topo_exec "$client" timeout 120 "$py" "$here/grpc_stream.py" "$@"; }
json_holds() {   # json_holds JSON PYTHON_EXPR: true if the expression holds for j
  "$py" -c "import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if ($2) else 1)" "$1"
}
backends_stat() {   # the sum over the four backends of stats field $1
  local i total=0 n
  for i in 1 2 3 4; do
    n=$(nsenter --net="/run/netns/$(topo_ns node)" "$py" "$here/grpc_client.py" stats "$(topo_addr backend "$i"):50051" |
      "$py" -c "import json,sys; print(json.load(sys.stdin)['$1'])")
    total=$((total + ${n:-0}))
  done
  echo "$total"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$AGENT_PID/status"; }

# 1. Server streaming.
out=$(stream down "$target" 2000 16384)
echo "down: $out"
agent_check "server stream: 2,000 messages of 16 KiB, in order, OK, the backend's trailer" \
  json_holds "$out" 'j["code"] == "OK" and j["messages"] == 2000 and j["bytes"] == 2000 * 16384 and j["in_order"] and j["backend"]'

# 2. Bidirectional streaming.
out=$(stream echo "$target" 500 4096)
echo "echo: $out"
agent_check "bidirectional stream: 500 messages of 4 KiB echoed in order, OK" \
  json_holds "$out" 'j["code"] == "OK" and j["messages"] == 500 and j["bytes"] == 500 * 4096 and j["in_order"] and j["backend"]'

# 3. A stalled reader: sluiced must hold the backend back, not buffer.
marker="$AGENT_WORK/first-message"
rss_before=$(rss_kib)
sent_before=$(backends_stat stream_messages_sent)
stream down "$target" 1024 65536 --stall 8 --marker "$marker" >"$AGENT_WORK/stalled.json" 2>"$AGENT_WORK/stalled.err" &
reader=$!
for _ in $(seq 1 100); do [[ -e $marker ]] && break; sleep 0.1; done
agent_check "the stalled reader got its first message" test -e "$marker"
rss_max=$rss_before
for _ in $(seq 1 12); do   # 6 s of the 8 s stall
  sleep 0.5
  r=$(rss_kib)
  ((r > rss_max)) && rss_max=$r
done
sent_stalled=$(( $(backends_stat stream_messages_sent) - sent_before ))
wait "$reader"
out=$(cat "$AGENT_WORK/stalled.json")
growth=$((rss_max - rss_before))
echo "stalled reader: RSS $rss_before KiB -> at most $rss_max KiB (+$growth KiB) during the stall; the backend had sent $sent_stalled of 1024 messages of 64 KiB; then: $out"
agent_check "while the reader stalls, sluiced grows by < 16 MiB of the 64 MiB offered (+$growth KiB)" \
  test "$growth" -lt $((16 * 1024))
agent_check "after the stall all 1,024 messages of 64 KiB arrive in order, OK" \
  json_holds "$out" 'j["code"] == "OK" and j["messages"] == 1024 and j["bytes"] == 1024 * 65536 and j["in_order"]'

# 4. Cancellation reaches the backend.
open_before=$(backends_stat streams_open)
agent_check "no backend stream open before the cancel test ($open_before)" test "$open_before" -eq 0
sent_before=$(backends_stat stream_messages_sent)
out=$(stream down "$target" 100000 16384 --cancel-after 20)
echo "cancel: $out"
agent_check "the client cancelled after 20 messages" json_holds "$out" 'j["code"] == "CANCELLED" and j["messages"] == 20'
open=1
deadline=$((SECONDS + 5))
while ((SECONDS <= deadline)); do
  open=$(backends_stat streams_open)
  [[ $open -eq 0 ]] && break
  sleep 0.2
done
sent=$(( $(backends_stat stream_messages_sent) - sent_before ))
echo "after the cancel: $open backend streams open, the backend sent $sent of 100,000 messages"
agent_check "the backend's stream ended within 5 s of the client's cancel (sluice reset it upstream)" test "$open" -eq 0
agent_check "the backend stopped early ($sent of 100,000 messages sent)" test "$sent" -lt 50000

# 5. grpc_response_status from the trailers (after data, HTTP status 200):
# Istio's label is the trailers' code, not the one HTTP 200 maps to (0).
out=$(stream down "$target" 3 1024 --end-code 5)
echo "down ending NOT_FOUND: $out"
agent_check "a stream ending with grpc-status 5 in its trailers reaches the client as NOT_FOUND after 3 messages" \
  json_holds "$out" 'j["code"] == "NOT_FOUND" and j["messages"] == 3'
metrics=$(agent_curl "http://$AGENT_ADMIN/stats/prometheus" | grep '^istio_requests_total{.*destination_service="productpage')
echo "$metrics" | sed 's/^/  /'
count_labels() { echo "$metrics" | grep -F "$1" | grep -F "$2" | awk '{s += $NF} END {print s + 0}'; }
agent_check "istio_requests_total: the NOT_FOUND stream counted with grpc_response_status 5 (from its trailers)" \
  test "$(count_labels 'grpc_response_status="5"' 'response_flags="-"')" -eq 1
agent_check "istio_requests_total: the 3 streams that ended OK counted with grpc_response_status 0" \
  test "$(count_labels 'grpc_response_status="0"' 'response_flags="-"')" -eq 3
agent_check "istio_requests_total: the cancelled stream counted once, flag DC (downstream reset)" \
  test "$(count_labels 'request_protocol="grpc"' 'response_flags="DC"')" -eq 1
agent_check "istio_requests_total: every stream labelled request_protocol grpc" \
  test "$(count_labels 'request_protocol="grpc"' '')" -eq 5

agent_finish

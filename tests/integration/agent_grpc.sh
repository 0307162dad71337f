#!/usr/bin/env bash
# gRPC through sluiced's L7 proxy, with real grpcio clients (h2c) and
# curl/nghttp for the exact frames (docs/l7-proxy.md, "gRPC"):
#  - fault abort with grpcStatus RESOURCE_EXHAUSTED: the grpcio client gets
#    that status code, as one trailers-only HEADERS frame (nghttp), and an
#    HTTP/1.1 gRPC client the same head (HTTP 200, grpc-status: 8);
#  - no healthy upstream (a subset without endpoints): UNAVAILABLE, not an
#    HTTP 503 the client would read as a transport failure;
#  - retryOn "unavailable": a backend that answers the first attempt with
#    grpc-status 14 (trailers-only) and the second with 0: the client sees
#    OK and the backend saw 2 attempts (a POST: gRPC tokens retry any method);
#  - grpc-timeout: a 300m grpc-timeout on a 3 s handler under a route
#    without timeout gets DEADLINE_EXCEEDED from sluice in about 300 ms;
#    with a 10 s route timeout the grpc-timeout still wins (min of both);
#  - istio_requests_total counts each with its grpc_response_status.
# The backends behind sluice speak HTTP/1.1 (sluice's upstream connections
# are HTTP/1.1), answering gRPC-shaped trailers-only responses
# (grpc_h1_backend.py).
# On main every check fails: grpcStatus is ignored (warning), the call
# reaches the backend and a proxied trailers-only answer leaves as HEADERS
# without END_STREAM (grpcio: UNKNOWN "Stream removed"); the local 503 is
# text/plain (grpcio: metadata parse error); retryOn unavailable never
# matches (1 attempt); grpc-timeout is not read (grpc-status 0 after 3 s);
# there is no grpc_response_status label.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"
topo_require_cmd nghttp
# Debian's python3-grpcio is in the system interpreter, which may not be
# the first python3 on PATH.
GRPC_PY=""
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null && "$py" -c 'import grpc' 2>/dev/null; then GRPC_PY=$(command -v "$py"); break; fi
done
if [[ -z $GRPC_PY ]]; then
  echo "SKIP: python3-grpcio is not installed (tools/install-deps.sh)"
  [[ ${CI:-} == true ]] && exit 1
  exit 77
fi

agent_setup grpc
be1=$(topo_addr backend 1)
topo_spawn "$(topo_ns backend 1)" python3 "$here/grpc_h1_backend.py" "$be1" 9090 "$AGENT_WORK/backend.log"
topo_wait_port "$(topo_ns node)" "$be1" 9090 || exit 1
be2=$(topo_addr backend 2)
topo_spawn "$(topo_ns backend 2)" "$GRPC_PY" "$here/grpc_backend.py" echo-a "$be2:9091"
topo_wait_port "$(topo_ns node)" "$be2" 9091 10 || exit 1
be3=$(topo_addr backend 3)   # the mirror of echo: a grpcio server too, so it takes HTTP/2 only
topo_spawn "$(topo_ns backend 3)" "$GRPC_PY" "$here/grpc_backend.py" echo-mirror "$be3:9091"
topo_wait_port "$(topo_ns node)" "$be3" 9091 10 || exit 1
: >"$AGENT_WORK/backend.log"
cat >"$AGENT_WORK/config/grpc.yaml" <<YAML
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter]
  addresses: [10.96.0.20]
  # HTTP: upstream HTTP/1.1 to grpc_h1_backend.py (gRPC is told by content-type).
  ports: [{number: 9090, name: http-greeter, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: $be1, labels: {app: greeter, version: v1}}]
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo]
  addresses: [10.96.0.21]
  ports: [{number: 9091, name: grpc, protocol: GRPC}]
  resolution: STATIC
  endpoints: [{address: $be2}]
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: echo-mirror, namespace: default}
spec:
  hosts: [echo-mirror]
  addresses: [10.96.0.22]
  ports: [{number: 9091, name: grpc, protocol: GRPC}]
  resolution: STATIC
  endpoints: [{address: $be3}]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo]
  http:
  - route: [{destination: {host: echo}}]
    mirror: {host: echo-mirror}
    mirrorPercentage: {value: 100}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: greeter, namespace: default}
spec:
  host: greeter
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: none, labels: {version: none}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter]
  http:
  - match: [{uri: {prefix: /test.Fault/}}]
    fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}
    route: [{destination: {host: greeter, subset: v1}}]
  - match: [{uri: {prefix: /test.Nowhere/}}]
    route: [{destination: {host: greeter, subset: none}}]
  - match: [{uri: {prefix: /test.Retry/}}]
    retries: {attempts: 2, retryOn: unavailable}
    route: [{destination: {host: greeter, subset: v1}}]
  - match: [{uri: {prefix: /test.Slow/Capped}}]
    timeout: 10s
    route: [{destination: {host: greeter, subset: v1}}]
  - route: [{destination: {host: greeter, subset: v1}}]
YAML
agent_start
client=$(topo_ns client)
vip=10.96.0.20:9090
call() { topo_exec "$client" timeout 20 "$GRPC_PY" "$here/grpc_call.py" "$vip" "$@" 2>&1; }

# Fault abort with grpcStatus.
out=$(call /test.Fault/Call)
echo "fault abort (grpcio): $out"
agent_check "grpcio client gets RESOURCE_EXHAUSTED from the grpcStatus abort" \
  test "$out" = "RESOURCE_EXHAUSTED 0 fault filter abort"
printf '\0\0\0\0\4ping' >"$AGENT_WORK/msg"
topo_exec "$client" timeout 10 nghttp -v -d "$AGENT_WORK/msg" -H 'content-type: application/grpc' -H 'te: trailers' \
  "http://$vip/test.Fault/Call" >"$AGENT_WORK/fault.txt" 2>&1
headers_frame=$(grep -E 'recv HEADERS frame' "$AGENT_WORK/fault.txt")
echo "fault abort (nghttp): $headers_frame; $(grep -E 'recv \(stream_id=[0-9]+\) (:status|grpc-status|content-type)' "$AGENT_WORK/fault.txt" | tr '\n' ' ')"
agent_check "trailers-only: one HEADERS frame with END_STREAM, no DATA" \
  bash -c "grep -A1 'recv HEADERS frame' '$AGENT_WORK/fault.txt' | grep -q END_STREAM && ! grep -q 'recv DATA frame' '$AGENT_WORK/fault.txt'"
agent_check "trailers-only: :status 200, content-type application/grpc, grpc-status 8" \
  bash -c "grep -Eq 'recv \(stream_id=[0-9]+\) :status: 200' '$AGENT_WORK/fault.txt' &&
           grep -Eq 'recv \(stream_id=[0-9]+\) content-type: application/grpc' '$AGENT_WORK/fault.txt' &&
           grep -Eq 'recv \(stream_id=[0-9]+\) grpc-status: 8' '$AGENT_WORK/fault.txt'"
h1=$(topo_exec "$client" curl -s -m 5 --http1.1 -D - -o /dev/null -H 'content-type: application/grpc' \
  --data-binary @"$AGENT_WORK/msg" "http://$vip/test.Fault/Call" | tr -d '\r')
echo "fault abort (HTTP/1.1): $(echo "$h1" | tr '\n' ' ')"
agent_check "an HTTP/1.1 gRPC client gets the same head: 200, grpc-status 8, empty body" \
  bash -c "grep -q '^HTTP/1.1 200' <<<'$h1' && grep -q '^grpc-status: 8$' <<<'$h1' && grep -q '^content-length: 0$' <<<'$h1'"
agent_check "the backend saw no Fault call" bash -c "! grep -q test.Fault '$AGENT_WORK/backend.log'"

# No healthy upstream.
out=$(call /test.Nowhere/Call)
echo "no healthy upstream: $out"
agent_check "no endpoint: UNAVAILABLE with sluice's reason" test "$out" = "UNAVAILABLE 0 no healthy upstream"

# Retry on grpc-status UNAVAILABLE (trailers-only from the backend).
out=$(call /test.Retry/Call --stream)
attempts=$(grep -c '^POST /test.Retry/Call$' "$AGENT_WORK/backend.log")
echo "retry on unavailable: $out; backend attempts: $attempts"
agent_check "retryOn unavailable: the client sees OK" test "$out" = "OK 0"
agent_check "retryOn unavailable: the backend saw 2 attempts" test "$attempts" -eq 2

# grpc-timeout under a route without timeout, then under a 10 s one.
topo_exec "$client" timeout 10 nghttp -v -d "$AGENT_WORK/msg" -H 'content-type: application/grpc' -H 'te: trailers' \
  -H 'grpc-timeout: 300m' "http://$vip/test.Slow/Call" >"$AGENT_WORK/slow.txt" 2>&1
start=$(date +%s%N)
topo_exec "$client" timeout 10 nghttp -v -d "$AGENT_WORK/msg" -H 'content-type: application/grpc' \
  -H 'grpc-timeout: 300000u' "http://$vip/test.Slow/Capped" >"$AGENT_WORK/capped.txt" 2>&1
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
echo "grpc-timeout: $(grep -E 'recv \(stream_id=[0-9]+\) grpc-(status|message)' "$AGENT_WORK/slow.txt" | tr '\n' ' '); under a 10 s route: $(grep -E 'grpc-status' "$AGENT_WORK/capped.txt" | tr '\n' ' ') in ${elapsed_ms} ms"
agent_check "grpc-timeout 300m: DEADLINE_EXCEEDED (4) from sluice, trailers-only" \
  bash -c "grep -Eq 'recv \(stream_id=[0-9]+\) grpc-status: 4' '$AGENT_WORK/slow.txt' && grep -A1 'recv HEADERS frame' '$AGENT_WORK/slow.txt' | grep -q END_STREAM"
agent_check "grpc-timeout 300000u under a 10 s route timeout: DEADLINE_EXCEEDED well before the 3 s handler" \
  bash -c "grep -Eq 'recv \(stream_id=[0-9]+\) grpc-status: 4' '$AGENT_WORK/capped.txt' && test $elapsed_ms -lt 2500"
# A grpcio client's own deadline sends grpc-timeout; the client enforces it
# too, so what it sees is not sluice's doing: shown, not checked.
out=$(call /test.Slow/Call --timeout 0.5)
echo "grpcio deadline 0.5 s on the slow handler: $out"

# A real grpcio server behind sluice (HTTP/2 upstream): a unary call is OK;
# a grpc-timeout shorter than the handler is DEADLINE_EXCEEDED from sluice.
echo_vip=10.96.0.21:9091
out=$(topo_exec "$client" timeout 20 "$GRPC_PY" "$here/grpc_call.py" "$echo_vip" /test.Echo/Call --message "" 2>&1)
echo "grpcio server, unary: $out"
agent_check "real grpcio server behind sluice: unary call OK with its answer" test "$out" = "OK 1"
printf '\0\0\0\0\0013' >"$AGENT_WORK/delay3"
topo_exec "$client" timeout 10 nghttp -v -d "$AGENT_WORK/delay3" -H 'content-type: application/grpc' -H 'te: trailers' \
  -H 'grpc-timeout: 300m' "http://$echo_vip/test.Echo/Slow" >"$AGENT_WORK/echo_slow.txt" 2>&1
echo "grpcio server, 3 s handler, grpc-timeout 300m: $(grep -E 'recv \(stream_id=[0-9]+\) grpc-status' "$AGENT_WORK/echo_slow.txt" | tr '\n' ' ')"
agent_check "real grpcio server: grpc-timeout 300m on a 3 s handler is DEADLINE_EXCEEDED from sluice" \
  grep -Eq 'recv \(stream_id=[0-9]+\) grpc-status: 4' "$AGENT_WORK/echo_slow.txt"

# Mirrors to a gRPC (HTTP/2) cluster go out as h2c streams: the mirror's
# grpcio server, which takes nothing else, serves a copy of each call while
# the client's answers come from echo. Each unary call's body is the delay
# "0" (5 bytes of gRPC framing and 1 of message), so the copy carries a body.
mirror_stats() {
  topo_exec "$client" timeout 10 "$GRPC_PY" -c '
import grpc, sys
print(grpc.insecure_channel(sys.argv[1]).unary_unary("/test.Echo/Stats")(b"", timeout=5).decode())' "$be3:9091" 2>&1 |
    sed -n 's/.*"calls": \([0-9]*\).*/\1/p'
}
before=$(mirror_stats)
answers=""
for _ in $(seq 20); do
  answers+=$(topo_exec "$client" timeout 20 "$GRPC_PY" "$here/grpc_call.py" "$echo_vip" /test.Echo/Call --message 0 2>&1)$'\n'
done
for _ in $(seq 50); do   # mirrors are fire-and-forget: wait for them (at most 5 s)
  after=$(mirror_stats)
  (( ${after:-0} - ${before:-0} >= 20 )) && break
  sleep 0.1
done
echo "mirror to a gRPC cluster: client answers $(sort <<<"$answers" | uniq -c | tr '\n' ' '); mirror backend calls ${before:-?} -> ${after:-?}"
agent_check "20 unary calls with a mirror: all OK from echo" test "$(grep -c '^OK 1$' <<<"$answers")" -eq 20
agent_check "the gRPC mirror backend served a copy of each of the 20 calls (over HTTP/2)" \
  test "$(( ${after:-0} - ${before:-0} ))" -eq 20

metrics=$(agent_curl "http://$AGENT_ADMIN/stats/prometheus" | grep '^istio_requests_total{.*destination_service="greeter')
echo "$metrics" | sed 's/^/  /'
count() { echo "$metrics" | grep -F "$1" | grep -F "$2" | awk '{s += $NF} END {print s + 0}'; }
agent_check "metric: the fault aborts counted with grpc_response_status 8 (FI)" \
  test "$(count 'grpc_response_status="8"' 'response_flags="FI"')" -ge 2
agent_check "metric: the timeouts counted with grpc_response_status 4 (UT)" \
  test "$(count 'grpc_response_status="4"' 'response_flags="UT"')" -ge 2
agent_check "metric: the retried call counted once, grpc_response_status 0" \
  test "$(count 'grpc_response_status="0"' 'response_code="200"')" -eq 1
agent_check "metric: no healthy upstream counted with grpc_response_status 14 (UH)" \
  test "$(count 'grpc_response_status="14"' 'response_flags="UH"')" -eq 1
agent_finish

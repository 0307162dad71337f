#!/usr/bin/env bash
# HTTP/2 to the backends: sluiced's L7 proxy speaks h2c to ports declared
# grpc (and to an http port whose DestinationRule says h2UpgradePolicy:
# UPGRADE), with real gRPC servers (python3-grpcio, generic handlers) in the
# backend namespaces and a grpcio client on one channel:
#  - a 70/30 VirtualService split holds per RPC over ONE client connection:
#    10,000 RPCs, v1 share within +-1.5 points (3.3 sigma of a binomial at
#    n=10,000: sigma = 0.46 points), every RPC OK, and the x-backend trailer
#    of each answer reaches the client (grpc-status arrives as a trailer too:
#    a call without it is not OK in grpcio); 20 RPCs of 256 KiB up and
#    1 MiB down arrive whole (flow control both ways);
#  - streams are multiplexed: with maxConcurrentStreams 10 and maxConnections
#    1, 40 concurrent slow RPCs to subset v1 (2 backends) all succeed over at
#    most one upstream connection per sluiced worker and backend (counted at
#    the backends with ss), no backend ever
#    runs more than 10 at once; requests over the stream limit are queued
#    (Envoy: pending requests, http1MaxPendingRequests), not refused;
#  - http2MaxRequests 5 on a subset: of 20 concurrent slow RPCs 5 are served
#    and 15 get 503 (UO, Envoy's overflow) = gRPC UNAVAILABLE;
#  - an HTTP/1.1 client reaches the gRPC backend (grpc-status: 0 in the
#    chunked trailer section), through the grpc port and through an http
#    port with h2UpgradePolicy: UPGRADE; the same http port without it speaks
#    HTTP/1.1 to the gRPC server, which cannot answer;
#  - useClientProtocol on an http port: a gRPC client's RPCs go upstream as
#    HTTP/2 and are answered; an HTTP/1.1 client's request stays HTTP/1.1
#    even with h2UpgradePolicy: UPGRADE beside it;
#  - a backend that goes away (its pooled connections closed, new ones
#    refused): connect failures are retried on the other backend, every
#    RPC answered.
# On main (upstreams HTTP/1.1 only) no RPC succeeds.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"
topo_require_cmd ss
/usr/bin/python3 -c 'import grpc' 2>/dev/null || { echo "SKIP: python3-grpcio not installed"; exit 77; }
py=/usr/bin/python3

agent_setup h2up
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
  - {number: 50052, name: http-up, protocol: HTTP, targetPort: 50051}
  - {number: 50053, name: http-plain, protocol: HTTP, targetPort: 50051}
  - {number: 50054, name: http-client, protocol: HTTP, targetPort: 50051}
  - {number: 50055, name: http-client-up, protocol: HTTP, targetPort: 50051}
  resolution: STATIC
  workloadSelector:
    labels: {app: productpage}
YAML
cat >"$AGENT_WORK/config/routing.yaml" <<'YAML'
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - match: [{uri: {prefix: /test.Echo/Slow}}]
    route: [{destination: {host: productpage, subset: v1}}]
  - match: [{uri: {prefix: /test.Echo/Capped}}]
    route: [{destination: {host: productpage, subset: capped}}]
  - route:
    - destination: {host: productpage, subset: v1}
      weight: 70
    - destination: {host: productpage, subset: v2}
      weight: 30
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: productpage, namespace: default}
spec:
  host: productpage
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 1}
      http: {maxConcurrentStreams: 10}
    portLevelSettings:
    - port: {number: 50052}
      connectionPool: {http: {h2UpgradePolicy: UPGRADE}}
    - port: {number: 50054}
      connectionPool: {http: {useClientProtocol: true}}
    - port: {number: 50055}
      connectionPool: {http: {useClientProtocol: true, h2UpgradePolicy: UPGRADE}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - name: capped
    labels: {version: v2}
    trafficPolicy: {connectionPool: {http: {http2MaxRequests: 5}}}
YAML
agent_start
client=$(topo_ns client)
vip=10.96.0.10

json_holds() {   # json_holds FILE PYTHON_EXPR: true if the expression holds for j, FILE's JSON
  "$py" -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"
}
backend_connections() {   # established connections at backend $1's gRPC port
  topo_exec "$(topo_ns backend "$1")" ss -Htn state established "( sport = :50051 )" | wc -l
}
backend_stat() {   # backend $1's stats field $2
  nsenter --net="/run/netns/$(topo_ns node)" "$py" "$here/grpc_client.py" stats "$(topo_addr backend "$1"):50051" |
    "$py" -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# 1. The split, per RPC, over one channel.
topo_exec "$client" timeout 90 "$py" "$here/grpc_client.py" calls "$vip:50051" Call 10000 32 "" \
  >"$AGENT_WORK/split.json" 2>"$AGENT_WORK/split.err"
echo "split: $(cat "$AGENT_WORK/split.json")"
agent_check "10,000 RPCs over one channel, all OK" \
  json_holds "$AGENT_WORK/split.json" 'j["codes"] == {"OK": 10000}'
agent_check "every answer's trailers reached the client" \
  json_holds "$AGENT_WORK/split.json" 'j["trailers"] == 10000'
share=$("$py" -c 'import json,sys; j=json.load(open(sys.argv[1]))["backends"]; n=sum(j.values()); print(round(100*sum(v for k,v in j.items() if "-v1-" in k)/max(n,1),2))' "$AGENT_WORK/split.json")
echo "v1 share: $share %"
agent_check "70/30 per RPC within +-1.5 points (n=10,000)" \
  "$py" -c 'import sys; sys.exit(0 if abs(float(sys.argv[1]) - 70) <= 1.5 else 1)' "$share"
agent_check "one client connection to the proxy" \
  test "$(topo_exec "$client" ss -Htn state established "( dport = :50051 )" | wc -l)" -le 1

# 1b. Flow control both ways: 20 RPCs of 256 KiB up and 1 MiB down, 10 at
# once, past every stream and connection window, on one channel.
topo_exec "$client" timeout 60 "$py" "$here/grpc_client.py" calls "$vip:50051" Big 20 10 1048576 \
  >"$AGENT_WORK/big.json" 2>"$AGENT_WORK/big.err"
echo "big: $(cat "$AGENT_WORK/big.json")"
agent_check "20 RPCs of 256 KiB requests and 1 MiB answers all OK, whole, trailers included" \
  json_holds "$AGENT_WORK/big.json" 'j["codes"] == {"OK": 20} and j["trailers"] == 20 and j["bytes"] == 20 * (16 + 1048577)'

# 2. Multiplexing and maxConcurrentStreams: 40 concurrent RPCs to v1.
before=$(( $(backend_stat 1 calls) + $(backend_stat 2 calls) ))
topo_exec "$client" timeout 60 "$py" "$here/grpc_client.py" calls "$vip:50051" Slow 40 40 0.5 \
  >"$AGENT_WORK/slow.json" 2>"$AGENT_WORK/slow.err"
echo "slow: $(cat "$AGENT_WORK/slow.json")"
after=$(( $(backend_stat 1 calls) + $(backend_stat 2 calls) ))
c1=$(backend_connections 1)
c2=$(backend_connections 2)
m1=$(backend_stat 1 max_inflight)
m2=$(backend_stat 2 max_inflight)
echo "v1 backends: connections $c1 + $c2, most in flight $m1 / $m2, calls $((after - before))"
agent_check "40 concurrent RPCs all OK (queued over the stream limit, not refused)" \
  json_holds "$AGENT_WORK/slow.json" 'j["codes"] == {"OK": 40}'
# Pools are per worker (sluiced runs 2): the split's connections stay pooled
# on its worker, this run may land on the other; at most one per worker and
# backend either way, against 40 streams.
agent_check "multiplexed: 40 streams over at most one connection per worker and v1 backend" \
  test "$c1" -ge 1 -a "$c1" -le 2 -a "$c2" -ge 1 -a "$c2" -le 2
agent_check "maxConcurrentStreams 10: no backend ran more than 10 at once" test "$m1" -le 10 -a "$m2" -le 10
agent_check "the stream limit was reached (10 at once on a backend)" test "$m1" -eq 10 -o "$m2" -eq 10

# 3. http2MaxRequests: overflow is 503 (UO), UNAVAILABLE to gRPC.
topo_exec "$client" timeout 60 "$py" "$here/grpc_client.py" calls "$vip:50051" Capped 20 20 1 \
  >"$AGENT_WORK/capped.json" 2>"$AGENT_WORK/capped.err"
echo "capped: $(cat "$AGENT_WORK/capped.json")"
agent_check "http2MaxRequests 5: 5 of 20 concurrent RPCs served, 15 UNAVAILABLE" \
  json_holds "$AGENT_WORK/capped.json" 'j["codes"] == {"OK": 5, "UNAVAILABLE": 15}'
overflows=$(agent_curl "http://$AGENT_ADMIN/stats/prometheus" |
  awk 'index($0, "sluice_pool_overflows_total{") == 1 && index($0, "destination_version=\"capped\"") {s += $NF} END {print s + 0}')
agent_check "the 15 overflows counted in sluice_pool_overflows_total{destination_version=capped} ($overflows)" \
  test "$overflows" -eq 15

# 4. HTTP/1.1 clients to the gRPC backend: a gRPC frame (delay "0") POSTed.
printf '\x00\x00\x00\x00\x010' >"$AGENT_WORK/frame.bin"
h1_grpc() {   # h1_grpc PORT: the raw HTTP/1.1 response, chunked framing and trailers included
  topo_exec "$client" curl -s -m 5 --http1.1 --raw -i -H 'content-type: application/grpc' \
    --data-binary @"$AGENT_WORK/frame.bin" "http://$vip:$1/test.Echo/Call" | tr -d '\0'
}
out=$(h1_grpc 50051)
echo "$out" | head -12
agent_check "HTTP/1.1 client -> grpc port: 200" grep -q '^HTTP/1.1 200' <<<"$out"
agent_check "HTTP/1.1 client -> grpc port: grpc-status: 0 in the trailers" grep -qi '^grpc-status: 0' <<<"$out"
out=$(h1_grpc 50052)
agent_check "h2UpgradePolicy UPGRADE on an http port: HTTP/2 upstream, grpc-status: 0" \
  grep -qi '^grpc-status: 0' <<<"$out"
out=$(h1_grpc 50053)
echo "$out" | head -3
agent_check "same http port without UPGRADE: HTTP/1.1 upstream, the gRPC server cannot answer" \
  bash -c '! grep -qi "^grpc-status: 0" <<<"$1"' _ "$out"

# 4b. useClientProtocol: the upstream speaks the client's protocol. A gRPC
# client (HTTP/2) through an http port gets HTTP/2 to the gRPC server (which
# plain http-port routing would reach over HTTP/1.1, unanswered); an
# HTTP/1.1 client stays HTTP/1.1 even where h2UpgradePolicy says UPGRADE
# (Istio: with useClientProtocol, h2UpgradePolicy is ineffective).
for port in 50054 50055; do
  topo_exec "$client" timeout 30 "$py" "$here/grpc_client.py" calls "$vip:$port" Call 20 4 "" \
    >"$AGENT_WORK/client-proto-$port.json" 2>"$AGENT_WORK/client-proto-$port.err"
  echo "useClientProtocol, port $port, gRPC client: $(cat "$AGENT_WORK/client-proto-$port.json")"
  agent_check "useClientProtocol (port $port): 20 RPCs of an HTTP/2 client go upstream as HTTP/2, all OK" \
    json_holds "$AGENT_WORK/client-proto-$port.json" 'j["codes"] == {"OK": 20}'
done
out=$(h1_grpc 50055)
echo "$out" | head -3
agent_check "useClientProtocol beats h2UpgradePolicy UPGRADE: an HTTP/1.1 client stays HTTP/1.1 upstream (no grpc-status)" \
  bash -c '! grep -qi "^grpc-status: 0" <<<"$1"' _ "$out"

# 5. A backend goes away: its pooled HTTP/2 connections close under the
# proxy, new ones fail to connect, and Istio's default retries
# (connect-failure) send those RPCs (POSTs) to the other v1 backend.
kill "${AGENT_GRPC_PIDS[0]}"
wait "${AGENT_GRPC_PIDS[0]}" 2>/dev/null
topo_exec "$client" timeout 60 "$py" "$here/grpc_client.py" calls "$vip:50051" Slow 200 8 "" \
  >"$AGENT_WORK/gone.json" 2>"$AGENT_WORK/gone.err"
echo "one v1 backend gone: $(cat "$AGENT_WORK/gone.json")"
agent_check "a v1 backend gone: 200 RPCs all OK, all from the other (connect failures retried)" \
  json_holds "$AGENT_WORK/gone.json" 'j["codes"] == {"OK": 200} and j["backends"] == {"productpage-v1-b": 200}'

agent_finish

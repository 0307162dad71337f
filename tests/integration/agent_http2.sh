#!/usr/bin/env bash
# HTTP/2 from the client (h2c by prior knowledge) through sluiced's L7 proxy
# to HTTP/1.1 backends: each stream is one request, routed, faulted and
# timed out on its own.
#  - a 70/30 weighted route holds per request over ONE client connection
#    (h2load -c1 -m10, 2,000 requests; counted at the backends). Tolerance:
#    agent_share_ok's 4.5 sigma of a binomial, +-4.6 points at n=2,000 —
#    a per-connection choice would put all 2,000 on one subset; each
#    stream is counted once in istio_requests_total;
#  - a fault abort route answers 503 on its streams while another stream of
#    the same connection gets 200;
#  - a route timeout (300 ms) answers 504 on its stream while a fast stream
#    beside it gets 200, and the connection lives on;
#  - rapid reset (CVE-2023-44487): 50 streams opened and cancelled at once
#    are tolerated, 300 end the connection with GOAWAY(ENHANCE_YOUR_CALM).
# On main (no HTTP/2) the proxy answers the preface with 505 and h2load
# fails every request.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"
topo_require_cmd h2load nghttp

agent_setup h2
cat >"$AGENT_WORK/config/routing.yaml" <<'YAML'
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - match: [{uri: {prefix: /fault}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: productpage, subset: v1}}]
  - match: [{uri: {prefix: /slow}}]
    timeout: 0.3s
    route: [{destination: {host: productpage, subset: v1}}]
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
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
agent_start
client=$(topo_ns client)
vip=10.96.0.10

backend_requests() {   # the HTTP requests each backend counted, as JSON {name: n}
  local i out="{"
  for i in 1 2 3 4; do
    n=$(agent_curl "http://$(topo_addr backend "$i"):9080/__stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
    out+="\"${AGENT_BACKENDS[$((i - 1))]}\": ${n:-0}"
    [[ $i -lt 4 ]] && out+=", "
  done
  echo "$out}"
}

before=$(backend_requests)
topo_exec "$client" timeout 60 h2load -c1 -m10 -n 2000 "http://$vip:9080/" >"$AGENT_WORK/h2load.txt" 2>&1
after=$(backend_requests)
cat "$AGENT_WORK/h2load.txt" | grep -E "requests:|status codes:|clients"
split=$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(json.dumps({"backends": {k: b[k]-a[k] for k in a}}, separators=(",", ":")))' "$before" "$after")
echo "per backend: $split"
agent_check "h2load: 2000 requests over one connection, all 2xx" \
  grep -q "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded" "$AGENT_WORK/h2load.txt"
agent_check "h2load: one client connection" grep -q "1 total client(s)" "$AGENT_WORK/h2load.txt"
agent_check "70/30 split per stream within 4.5 sigma (n=2000)" agent_share_ok "$split" 70
# Each stream is recorded once (a flush re-entering the exchange once
# counted every HTTP/2 request twice).
recorded=$(agent_curl "http://$AGENT_ADMIN/stats/prometheus" |
  awk '/^istio_requests_total\{/ && /response_code="200"/ {s += $NF} END {print s + 0}')
echo "istio_requests_total (200): $recorded"
agent_check "istio_requests_total counts the 2000 streams once each" test "$recorded" -eq 2000

# One connection, three streams: two aborted by the fault, one served.
topo_exec "$client" timeout 10 nghttp -v "http://$vip:9080/fault/a" "http://$vip:9080/" "http://$vip:9080/fault/b" \
  >"$AGENT_WORK/fault.txt" 2>&1
statuses() { grep -o 'recv (stream_id=[0-9]*) :status: [0-9]*' "$1" | awk '{print $NF}' | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'; }
echo "fault streams: $(statuses "$AGENT_WORK/fault.txt")"
agent_check "fault abort per stream: two 503, one 200 on one connection" \
  test "$(statuses "$AGENT_WORK/fault.txt")" = "200=1 503=2 "

# A slow stream times out (504) beside a fast one on the same connection.
start=$(date +%s%N)
topo_exec "$client" timeout 10 nghttp -v "http://$vip:9080/slow?delay_ms=3000" "http://$vip:9080/" \
  >"$AGENT_WORK/timeout.txt" 2>&1
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
echo "timeout streams: $(statuses "$AGENT_WORK/timeout.txt") in ${elapsed_ms} ms"
agent_check "route timeout per stream: 504 for the slow one, 200 beside it" \
  test "$(statuses "$AGENT_WORK/timeout.txt")" = "200=1 504=1 "
agent_check "the timed-out stream ended well before the backend's 3 s delay" test "$elapsed_ms" -lt 2500
agent_check "no RST_STREAM or GOAWAY error on the connection" \
  bash -c "! grep -E 'recv (RST_STREAM|GOAWAY)' '$AGENT_WORK/timeout.txt' '$AGENT_WORK/fault.txt' | grep -v NO_ERROR"
# Rapid reset, from a hand-written client (h2_rapid_reset.py).
few=$(topo_exec "$client" timeout 20 python3 "$here/h2_rapid_reset.py" "$vip" 9080 50)
many=$(topo_exec "$client" timeout 20 python3 "$here/h2_rapid_reset.py" "$vip" 9080 300)
echo "rapid reset: 50 pairs -> $few; 300 pairs -> $many"
agent_check "50 cancelled streams: no GOAWAY" test "$few" = "served 50"
agent_check "300 cancelled streams: GOAWAY ENHANCE_YOUR_CALM (11)" test "$many" = "goaway 11"
served_h2() { topo_exec "$client" timeout 10 nghttp -v "http://$vip:9080/" | grep -q 'recv (stream_id=[0-9]*) :status: 200'; }
agent_check "sluiced still serves HTTP/2 after it" served_h2
agent_finish

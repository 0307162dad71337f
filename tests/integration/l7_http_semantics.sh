#!/usr/bin/env bash
# Client-side HTTP/1.1 semantics through the proxy, checked at a recording
# backend (see l7_http_client_cases.py), then a graceful drain: a keep-alive
# client in the middle of its requests gets its in-flight response with
# Connection: close, and the proxy exits.
source "$(dirname "$0")/l7_lib.sh"

PORT=28086
l7_pybackend v1-a 127.77.11.2 "$PORT" --record "$L7_TMP/backend.jsonl" --delay-ms 0
l7_productpage_config "$L7_TMP/cfg" "$PORT"
sed -i '/productpage-v1-b/,/version: v1}/ s/version: v1}/version: v1-unused}/' "$L7_TMP/cfg/service.yaml"
cat >"$L7_TMP/cfg/routing.yaml" <<'YAML'
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - destination: {host: productpage, subset: v1}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  subsets:
  - {name: v1, labels: {version: v1}}
YAML
touch "$L7_TMP/backend.jsonl"
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18086 "$PORT" --workers 1 --header-timeout-ms 2000
python3 "$L7_SRC/l7_http_client_cases.py" 127.77.0.1:18086 "$L7_TMP/backend.jsonl" || l7_fail "client semantics"

# Drain: a slow request is in flight when SIGTERM arrives; it completes, with
# connection: close, and the proxy exits within a few seconds.
kill "$L7_PID_v1_a"
wait "$L7_PID_v1_a" 2>/dev/null || true
l7_pybackend v1-a 127.77.11.2 "$PORT" --delay-ms 1000
curl -s -D "$L7_TMP/drain.headers" -o "$L7_TMP/drain.body" http://127.77.0.1:18086/slow &
client=$!
sleep 0.3
start=$(date +%s)
kill -TERM "$L7_PROXY_PID"
wait "$client" || l7_fail "in-flight request failed during drain"
wait "$L7_PROXY_PID" || true
L7_PROXY_PID=
grep -q '^HTTP/1.1 200' "$L7_TMP/drain.headers" || l7_fail "in-flight request did not complete: $(head -1 "$L7_TMP/drain.headers")"
grep -qi '^connection: close' "$L7_TMP/drain.headers" || l7_fail "drained response lacks connection: close"
(($(date +%s) - start <= 5)) || l7_fail "proxy took too long to drain"
if curl -s -m 1 http://127.77.0.1:18086/ >/dev/null; then l7_fail "proxy still accepting after drain"; fi
echo "PASS: client HTTP/1.1 semantics and graceful drain"

#!/usr/bin/env bash
# An HTTP/2 backend that refuses streams, as servers shedding load or
# restarting do (h2_refusing_backend.py, raw frames): RST_STREAM
# REFUSED_STREAM on a request, or GOAWAY(last stream 0) on a connection's
# first request. Neither was processed, so with Istio's default retry
# policy (no `retries` field: 2 attempts on connect-failure,refused-stream,
# unavailable,cancelled,retriable-status-codes; docs/config-reference.md)
# the client gets the backend's 200 and never sees the refusal; with
# `retries: {attempts: 0}` it gets a 503.
source "$(dirname "$0")/l7_lib.sh"

PORT=28099
BACKEND=$L7_SRC/h2_refusing_backend.py
mkdir -p "$L7_TMP/cfg"
cat >"$L7_TMP/cfg/service.yaml" <<YAML
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  addresses: [10.96.0.10]
  ports: [{number: $PORT, name: http2, protocol: HTTP2}]
  resolution: STATIC
  endpoints: [{address: 127.77.11.2}]
YAML

backend_pid=
run_case() {   # run_case NAME BACKEND_ARGS ROUTE_YAML: one proxy and one backend; the response in $L7_TMP/NAME.*
  local name=$1 args=$2 route=$3
  python3 "$BACKEND" --name h2-a --listen "127.77.11.2:$PORT" $args >"$L7_TMP/$name.backend" 2>&1 &
  backend_pid=$!
  L7_PIDS+=("$backend_pid")
  l7_wait_port 127.77.11.2 "$PORT"
  printf '%s\n' "$route" >"$L7_TMP/cfg/routing.yaml"
  l7_proxy "$L7_TMP/cfg" 127.77.0.1:18099 "$PORT" --workers 1
  curl -s -m 10 -o "$L7_TMP/$name.body" -w '%{http_code}' http://127.77.0.1:18099/ >"$L7_TMP/$name.status" || true
  l7_stop_proxy
  kill "$backend_pid" 2>/dev/null || true
  wait "$backend_pid" 2>/dev/null || true
  echo "$name: status $(cat "$L7_TMP/$name.status"), body $(tr -d '\n' <"$L7_TMP/$name.body"), backend: $(tr '\n' ' ' <"$L7_TMP/$name.backend")"
}
retries_sent() { awk '/^sluice_retries_total/ {n += $NF} END {print n + 0}' "$L7_TMP/metrics.txt"; }

default_route='apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route: [{destination: {host: productpage}}]'

# expect_retried CASE REFUSAL_LINE WHAT: the client got the backend's 200,
# the backend logged the refusal (a line matching REFUSAL_LINE) and then
# served, and exactly one retry was sent.
expect_retried() {
  local name=$1 refusal=$2 what=$3
  [[ $(cat "$L7_TMP/$name.status") == 200 && $(cat "$L7_TMP/$name.body") == h2-a ]] ||
    l7_fail "$what was not retried: the client got $(cat "$L7_TMP/$name.status")"
  grep -qE "$refusal" "$L7_TMP/$name.backend" && grep -q '^served ' "$L7_TMP/$name.backend" ||
    l7_fail "the backend did not refuse ($refusal) and then serve: $(cat "$L7_TMP/$name.backend")"
  [[ $(retries_sent) -eq 1 ]] || l7_fail "one retry expected, the metrics count $(retries_sent)"
}

run_case refused "--refuse 1" "$default_route"
expect_retried refused '^refused 1$' "a refused stream"
echo "PASS: RST_STREAM REFUSED_STREAM: retried (1 retry), the client got the 200"

run_case goaway "--goaway 1" "$default_route"
expect_retried goaway '^goaway conn ' "a stream above GOAWAY's last stream id"
echo "PASS: GOAWAY(last stream 0): retried on a new connection, the client got the 200"

run_case no_retry "--refuse 1" "$default_route
    retries: {attempts: 0}"
[[ $(cat "$L7_TMP/no_retry.status") == 503 ]] ||
  l7_fail "with retries off a refused stream should be a 503, the client got $(cat "$L7_TMP/no_retry.status")"
[[ $(retries_sent) -eq 0 ]] || l7_fail "no retry expected, the metrics count $(retries_sent)"
echo "PASS: retries {attempts: 0}: a refused stream is a 503 to the client"

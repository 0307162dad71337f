#!/usr/bin/env bash
# connectionPool.tcp.maxConnectionDuration on the proxy's upstream
# connections (docs/config-reference.md, docs/l7-proxy.md "Upstream
# pools"): both subsets set 1s, idleTimeout stays at its 1 h default.
#  - v1, HTTP/1.1 (sluice-test-backend, whose /echo reports each request's
#    connection serial): requests in the first second share one connection;
#    a request the backend holds 1.5 s, sent on it before the second is up,
#    still gets its 200 (the connection drains, it is not cut), and the
#    next request arrives on a new connection; that one, left idle, is
#    closed about 1 s after it opened (polled with ss, up to 3 s: the idle
#    timeout alone would keep it an hour).
#  - v2, HTTP/2 (nginx h2c, h2UpgradePolicy UPGRADE, /connection answers
#    nginx's connection serial): streams in the first second share one
#    connection, a stream after it gets a new one, which is closed idle.
#  - sluice_upstream_connections_max_duration_reached_total counts the four
#    connections, two per subset.
# Timing margins: the requests that must share a connection are sent within
# ~0.2 s of its opening (1 s allowed); "after it" waits 1.3 s.
source "$(dirname "$0")/l7_lib.sh"
command -v ss >/dev/null || l7_skip_or_fail "ss not installed (iproute2)"

PORT=19212
LISTEN=127.77.0.1:19213
l7_test_backend v1-a 127.77.11.2 "$PORT"
l7_nginx v2-a 127.77.13.2 "$PORT" http2
l7_productpage_config "$L7_TMP/config" "$PORT"
sed -i '/productpage-v1-b/,/version: v1}/ s/version: v1}/version: v1-unused}/; /productpage-v2-b/,/version: v2}/ s/version: v2}/version: v2-unused}/' \
  "$L7_TMP/config/service.yaml"
{
  l7_virtual_service <<'YAML'
  - match: [{headers: {x-subset: {exact: v2}}}]
    route: [{destination: {host: productpage, subset: v2}}]
  - route: [{destination: {host: productpage, subset: v1}}]
YAML
  printf -- '---\napiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: productpage}\n'
  printf 'spec:\n  host: productpage\n  trafficPolicy: {connectionPool: {tcp: {maxConnectionDuration: 1s}}}\n  subsets:\n'
  printf '  - {name: v1, labels: {version: v1}}\n'
  printf '  - {name: v2, labels: {version: v2}, trafficPolicy: {connectionPool: {tcp: {maxConnectionDuration: 1s}, http: {h2UpgradePolicy: UPGRADE}}}}\n'
} >"$L7_TMP/config/routing.yaml"
l7_proxy "$L7_TMP/config" "$LISTEN" "$PORT" --workers 1

# v1 QUERY: the backend's connection serial for one request to v1.
v1() {
  local body
  body=$(curl -sS -m 5 "http://$LISTEN/echo$1") || l7_fail "request to v1 ($1) failed"
  [[ $body =~ \"connection\":\ *([0-9]+) ]] || l7_fail "v1's answer names no connection: $body"
  echo "${BASH_REMATCH[1]}"
}
v2() { curl -sS -m 5 -H 'x-subset: v2' "http://$LISTEN/connection" || l7_fail "request to v2 failed"; }
# closed_within BACKEND SECONDS: the proxy holds no connection to BACKEND within SECONDS.
closed_within() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [[ -z $(ss -tnH state established dst "$1" dport = ":$PORT") ]] && return 0
    sleep 0.1
  done
  return 1
}

# HTTP/1.1
a=$(v1 ""); b=$(v1 ""); c=$(v1 "")
echo "v1: three requests in the first second on connections $a $b $c"
[[ $a == "$b" && $b == "$c" ]] || l7_fail "v1's requests within maxConnectionDuration did not share one connection ($a $b $c)"
held=$(v1 "?delay_ms=1500")
after=$(v1 "")
echo "v1: a request held across the duration on $held, the next on $after"
[[ $held == "$a" ]] || l7_fail "the held request did not use the open connection ($held, not $a)"
[[ $after != "$a" ]] || l7_fail "v1's connection $a took a request after its maxConnectionDuration"
closed_within 127.77.11.2 3 || l7_fail "v1's idle connection $after still open 3 s after it opened (maxConnectionDuration 1s)"

# HTTP/2
a=$(v2); b=$(v2); c=$(v2)
echo "v2: three streams in the first second on connections $a $b $c"
[[ $a == "$b" && $b == "$c" ]] || l7_fail "v2's streams within maxConnectionDuration did not share one connection ($a $b $c)"
sleep 1.3
after=$(v2)
echo "v2: a stream 1.3 s later on connection $after"
[[ $after != "$a" ]] || l7_fail "v2's connection $a took a stream after its maxConnectionDuration"
closed_within 127.77.13.2 3 || l7_fail "v2's idle connection $after still open 3 s after it opened"

l7_stop_proxy
reached() {
  awk -v v="destination_version=\"$1\"" '/^sluice_upstream_connections_max_duration_reached_total/ && index($0, v) {n += $NF} END {print n + 0}' \
    "$L7_TMP/metrics.txt"
}
echo "max_duration_reached: v1 $(reached v1), v2 $(reached v2)"
[[ $(reached v1) == 2 && $(reached v2) == 2 ]] ||
  l7_fail "sluice_upstream_connections_max_duration_reached_total: v1 $(reached v1), v2 $(reached v2) (2 each expected)"
echo "PASS: maxConnectionDuration retires upstream connections (HTTP/1.1 and HTTP/2) without cutting a request"

#!/usr/bin/env bash
# connectionPool.tcp.tcpKeepalive on the proxy's upstream connections
# (docs/config-reference.md): subset v1's rule sets {time: 7s, interval: 3s,
# probes: 4}, v2's sets nothing. One keep-alive request to each subset (by a
# header match); then the pooled upstream connection to v1's backend runs
# the kernel's keepalive timer, at most 7 s from firing (ss -o shows
# "timer:(keepalive,...)"), and the one to v2's backend runs none. v2's
# route mirrors to subset `shadow` ({time: 9s}), whose backend holds its
# answer for 6 s: the mirror's own connection runs the shadow subset's
# timer (more than v1's 7 s away, at most 9 s).
source "$(dirname "$0")/l7_lib.sh"
command -v ss >/dev/null || l7_skip_or_fail "ss not installed (iproute2)"

PORT=19210
l7_nginx v1-a 127.77.11.2 "$PORT"
l7_nginx v2-a 127.77.13.2 "$PORT"
l7_pybackend shadow 127.77.15.2 "$PORT" --delay-ms 6000
l7_productpage_config "$L7_TMP/config" "$PORT"
printf -- '---\napiVersion: networking.istio.io/v1beta1\nkind: WorkloadEntry\nmetadata: {name: productpage-shadow}\n' >>"$L7_TMP/config/service.yaml"
printf 'spec: {address: 127.77.15.2, labels: {app: productpage, version: shadow}}\n' >>"$L7_TMP/config/service.yaml"
{
  l7_virtual_service <<'YAML'
  - match: [{headers: {x-subset: {exact: v2}}}]
    route: [{destination: {host: productpage, subset: v2}}]
    mirror: {host: productpage, subset: shadow}
    mirrorPercentage: {value: 100}
  - route: [{destination: {host: productpage, subset: v1}}]
YAML
  printf -- '---\napiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: productpage}\n'
  printf 'spec:\n  host: productpage\n  subsets:\n'
  printf '  - {name: v1, labels: {version: v1}, trafficPolicy: {connectionPool: {tcp: {tcpKeepalive: {time: 7s, interval: 3s, probes: 4}}}}}\n'
  printf '  - {name: v2, labels: {version: v2}}\n'
  printf '  - {name: shadow, labels: {version: shadow}, trafficPolicy: {connectionPool: {tcp: {tcpKeepalive: {time: 9s}}}}}\n'
} >"$L7_TMP/config/routing.yaml"
l7_proxy "$L7_TMP/config" 127.77.0.1:19211 "$PORT" --workers 1

for subset in v1 v2; do
  out=$(curl -sS -m 5 -H "x-subset: $subset" http://127.77.0.1:19211/) || l7_fail "request to $subset failed"
  [[ $out == "$subset-a" ]] || l7_fail "request for $subset answered by '$out'"
done
# timer_of ADDR: the timer field of the established connection to ADDR:PORT.
timer_of() { ss -tnoH state established dst "$1" dport = ":$PORT" | grep -o 'timer:([^)]*)' || echo none; }
v1=$(timer_of 127.77.11.2)
v2=$(timer_of 127.77.13.2)
for _ in $(seq 20); do   # the mirror goes out once v2's answer is on its way: wait for it (at most 2 s)
  shadow=$(timer_of 127.77.15.2)
  [[ $shadow != none ]] && break
  sleep 0.1
done
echo "upstream connection to v1: $v1; to v2: $v2; the mirror's to shadow: $shadow"
[[ $v1 == timer:\(keepalive,* ]] || l7_fail "v1's upstream connection runs no keepalive timer ($v1)"
# iproute2 6.1 prints under a minute as S.mmm followed by "ms" (seconds and
# milliseconds), under a second as "NNNms", longer as "2min3sec" or "119min"
# (the node's default keepalive, 7200 s).
[[ $v1 =~ ^timer:\(keepalive,([0-9]+)(\.[0-9]{3})?ms,0\)$ ]] &&
  { [[ -z ${BASH_REMATCH[2]} ]] || ((BASH_REMATCH[1] < 7 || (BASH_REMATCH[1] == 7 && 10#${BASH_REMATCH[2]#.} == 0))); } ||
  l7_fail "v1's keepalive fires later than tcpKeepalive.time 7s ($v1)"
[[ $v2 == none ]] || l7_fail "v2's upstream connection runs a timer without tcpKeepalive ($v2)"
[[ $shadow =~ ^timer:\(keepalive,([0-9]+)\.([0-9]{3})ms,0\)$ ]] &&
  ((BASH_REMATCH[1] * 1000 + 10#${BASH_REMATCH[2]} > 7000 && BASH_REMATCH[1] * 1000 + 10#${BASH_REMATCH[2]} <= 9000)) ||
  l7_fail "the mirror's connection to shadow does not run shadow's keepalive (time 9s): $shadow"
echo "PASS: tcpKeepalive sets the keepalive timer on v1's upstream connection and the mirror's to shadow only"

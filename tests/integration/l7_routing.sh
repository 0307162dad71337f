#!/usr/bin/env bash
# Per-request routing decisions:
#  1. header match: `end-user: jason` goes to v2, everyone else to v1;
#  2. no route matches → 404 with `x-sluice-no-route: 1`;
#  3. a weight change (SIGHUP reload) applies to the NEXT request on an
#     existing keep-alive connection.
source "$(dirname "$0")/l7_lib.sh"

PORT=28081
for n in v1-a:11 v1-b:12 v2-a:13 v2-b:14; do l7_nginx "${n%:*}" "127.77.${n#*:}.2" "$PORT"; done
l7_productpage_config "$L7_TMP/cfg" "$PORT"
cat >"$L7_TMP/cfg/routing.yaml" <<'YAML'
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
    route:
    - destination: {host: productpage, subset: v2}
  - match:
    - uri: {prefix: /}
    route:
    - destination: {host: productpage, subset: v1}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18081 "$PORT" --workers 2
URL=http://127.77.0.1:18081

jason=$(curl -s -o /dev/null -w '%header{x-backend}\n' -H 'end-user: jason' "$URL/p/[1-200]" | sort | uniq -c)
others=$(curl -s -o /dev/null -w '%header{x-backend}\n' -H 'end-user: alice' "$URL/p/[1-200]" | sort | uniq -c)
anon=$(curl -s -o /dev/null -w '%header{x-backend}\n' "$URL/p/[1-200]" | sort | uniq -c)
echo "jason: $jason"; echo "alice: $others"; echo "no header: $anon"
[[ $(grep -c 'v2-' <<<"$jason") -ge 1 && $(grep -c 'v1-' <<<"$jason") -eq 0 ]] || l7_fail "jason not routed only to v2"
[[ $(grep -c 'v1-' <<<"$others") -ge 1 && $(grep -c 'v2-' <<<"$others") -eq 0 ]] || l7_fail "alice not routed only to v1"
[[ $(grep -c 'v2-' <<<"$anon") -eq 0 ]] || l7_fail "request without end-user reached v2"

# A path outside every match: replace the catch-all with /p only.
sed -i 's|prefix: /}|prefix: /p}|' "$L7_TMP/cfg/routing.yaml"
kill -HUP "$L7_PROXY_PID"
for i in $(seq 1 50); do grep -q 'serving snapshot 2' "$L7_TMP/proxy.log" && break; sleep 0.1; done
headers=$(curl -s -D - -o /dev/null "$URL/elsewhere")
grep -q '^HTTP/1.1 404' <<<"$headers" || l7_fail "unmatched path did not get 404: $headers"
grep -qi '^x-sluice-no-route: 1' <<<"$headers" || l7_fail "404 lacks x-sluice-no-route: $headers"

# Weight shift on one keep-alive connection: 100 requests at v1 100%, then
# the config moves to v2 100%, then 100 more requests on the same connection.
cat >"$L7_TMP/cfg/routing.yaml" <<'YAML'
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - {destination: {host: productpage, subset: v1}, weight: 100}
    - {destination: {host: productpage, subset: v2}, weight: 0}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
kill -HUP "$L7_PROXY_PID"
for i in $(seq 1 50); do grep -q 'serving snapshot 3' "$L7_TMP/proxy.log" && break; sleep 0.1; done
python3 "$L7_SRC/l7_keepalive_client.py" --addr 127.77.0.1:18081 --count 200 --pause-after 100 \
  --pause-file "$L7_TMP/paused" >"$L7_TMP/shift.out" 2>"$L7_TMP/shift.err" &
client=$!
for i in $(seq 1 100); do [[ -e $L7_TMP/paused ]] && break; sleep 0.05; done
sed -i 's/weight: 100}/weight: 0}/; t; s/weight: 0}/weight: 100}/' "$L7_TMP/cfg/routing.yaml"
kill -HUP "$L7_PROXY_PID"
for i in $(seq 1 50); do grep -q 'serving snapshot 4' "$L7_TMP/proxy.log" && break; sleep 0.1; done
rm "$L7_TMP/paused"
wait "$client"
before=$(head -100 "$L7_TMP/shift.out" | grep -c ' v1-' || true)
after=$(tail -100 "$L7_TMP/shift.out" | grep -c ' v2-' || true)
echo "before shift: $before/100 at v1; after: $after/100 at v2; $(cat "$L7_TMP/shift.err")"
[[ $before -eq 100 && $after -eq 100 ]] || l7_fail "weight change did not apply per request on the open connection"
grep -q 'connections 1' "$L7_TMP/shift.err" || l7_fail "client used more than one connection"
echo "PASS: header routing, 404 no-route, weight shift on a live keep-alive connection"

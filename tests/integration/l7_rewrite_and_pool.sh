#!/usr/bin/env bash
# Route and pool settings checked at a recording backend:
#  - rewrite.uriRegexRewrite rewrites the path with capture groups, keeps the query;
#  - connectionPool.http.maxRequestsPerConnection: 3 — nine requests on one
#    client connection reach the backend on exactly three upstream
#    connections of three requests each;
#  - connectionPool.http.idleTimeout: 1s — the idle upstream connection is
#    closed after a second, while the client stays connected.
source "$(dirname "$0")/l7_lib.sh"
command -v ss >/dev/null || l7_skip_or_fail "ss (iproute2) not installed"

PORT=28090
LISTEN=127.77.0.1:18090
l7_pybackend v1-a 127.77.11.2 "$PORT" --record "$L7_TMP/v1-a.jsonl"
l7_productpage_config "$L7_TMP/cfg" "$PORT"
sed -i '/productpage-v1-b/,/version: v1}/ s/version: v1}/version: v1-unused}/' "$L7_TMP/cfg/service.yaml"
l7_virtual_service >"$L7_TMP/cfg/routing.yaml" <<'YAML'
  - match: [{uri: {prefix: /users/}}]
    rewrite:
      uriRegexRewrite: {match: '^/users/([^/]+)/(.*)$', rewrite: '/\2/by-user/\1'}
    route: [{destination: {host: productpage, subset: v1}}]
  - route: [{destination: {host: productpage, subset: v1}}]
YAML
l7_subsets_rule --policy '{connectionPool: {http: {maxRequestsPerConnection: 3, idleTimeout: 1s}}}' v1 \
  >>"$L7_TMP/cfg/routing.yaml"
l7_proxy "$L7_TMP/cfg" "$LISTEN" "$PORT" --workers 1
records() { python3 -c 'import json, sys; [print(json.loads(l)[sys.argv[1]]) for l in open(sys.argv[2])]' "$1" "$L7_TMP/v1-a.jsonl"; }

# uriRegexRewrite.
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: productpage' "http://$LISTEN/users/alice/orders/7?page=2")
[[ $code == 200 ]] || l7_fail "rewritten request answered $code"
target=$(records target | tail -1)
echo "/users/alice/orders/7?page=2 reached the backend as $target"
[[ $target == "/orders/7/by-user/alice?page=2" ]] || l7_fail "uriRegexRewrite: backend saw '$target'"
: >"$L7_TMP/v1-a.jsonl"
sleep 1.5   # the rewrite's pooled connection idles out (1s), so the count below starts afresh

# maxRequestsPerConnection: nine requests on one keep-alive client connection.
curl -s -o /dev/null -H 'Host: productpage' "http://$LISTEN/pool/[1-9]"
per_peer=$(records connection | sort | uniq -c | awk '{print $1}' | sort | tr '\n' ' ')
echo "requests per upstream connection: $per_peer"
[[ $per_peer == "3 3 3 " ]] || l7_fail "maxRequestsPerConnection 3: expected three connections of 3 requests, got '$per_peer'"

# idleTimeout: one request leaves one pooled connection; it is gone after ~1 s
# while the client connection (held open by python) stays.
upstream_conns() { ss -Htn state established "( dst 127.77.11.2 and dport = :$PORT )" | wc -l; }
python3 - "$LISTEN" "$L7_TMP/idle.out" <<'PY' &
import http.client, sys, time
host, port = sys.argv[1].split(":")
c = http.client.HTTPConnection(host, int(port))
c.request("GET", "/idle", headers={"Host": "productpage"})
r = c.getresponse(); r.read()
open(sys.argv[2], "w").write(f"{r.status}\n")
time.sleep(3)   # keep the client connection open past the upstream idle timeout
c.request("GET", "/idle-again", headers={"Host": "productpage"})
r = c.getresponse(); r.read()
open(sys.argv[2], "a").write(f"{r.status}\n")
PY
client=$!
for _ in $(seq 1 100); do [[ -s $L7_TMP/idle.out ]] && break; sleep 0.05; done   # the first answer is in
pooled=$(upstream_conns)
sleep 1.5
after=$(upstream_conns)
wait "$client"
echo "upstream connections: $pooled pooled after the request, $after after 1.5 s idle; client answers: $(tr '\n' ' ' <"$L7_TMP/idle.out")"
((pooled == 1)) || l7_fail "expected one pooled upstream connection after a request, found $pooled"
((after == 0)) || l7_fail "the pooled connection outlived the 1s idleTimeout ($after open)"
[[ $(tr '\n' ' ' <"$L7_TMP/idle.out") == "200 200 " ]] || l7_fail "the client's requests around the idle close failed"
echo "PASS: uriRegexRewrite applied; maxRequestsPerConnection and the pool idleTimeout close upstream connections"

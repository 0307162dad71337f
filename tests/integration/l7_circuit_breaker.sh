#!/usr/bin/env bash
# Istio's circuit-breaking recipe, counted over the whole cluster as Envoy
# counts it, whatever the number of workers: `maxConnections: 1` and
# `http1MaxPendingRequests: 1` in front of one backend that takes 1 s per
# request; 8 requests at once on 8 client connections, which SO_REUSEPORT
# spreads over the proxy's 2 workers. At most 2 connections open (the
# cluster's one, plus one that the other worker's empty pool may open, as
# Envoy allows) and 1 request waits, cluster-wide: at most 3 requests get
# 200, the others 503 with flag UO at once, and the overflow counter says
# so. (Counted per worker, 4 would get 200 when both workers take requests.)
# Timing margin: the 8 requests must reach the proxy within 1 s.
source "$(dirname "$0")/l7_lib.sh"

PORT=28097
LISTEN=127.77.0.1:18097
l7_pybackend v1-a 127.77.11.2 "$PORT" --delay-ms 1000 --record "$L7_TMP/v1-a.jsonl"
l7_productpage_config "$L7_TMP/cfg" "$PORT"
sed -i '/productpage-v1-b/,/version: v1}/ s/version: v1}/version: none}/' "$L7_TMP/cfg/service.yaml"
l7_virtual_service >"$L7_TMP/cfg/routing.yaml" <<'YAML'
  - route: [{destination: {host: productpage, subset: v1}}]
YAML
l7_subsets_rule --policy '{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}}' v1 \
  >>"$L7_TMP/cfg/routing.yaml"
l7_proxy "$L7_TMP/cfg" "$LISTEN" "$PORT" --workers 2 --access-log "$L7_TMP/access.log"

pids=()
for i in $(seq 8); do
  curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}\n' "http://$LISTEN/cb$i" >"$L7_TMP/code$i" &
  pids+=($!)
done
wait "${pids[@]}"
ok=$(cat "$L7_TMP"/code? | grep -c '^200 ' || true)
overflowed=$(cat "$L7_TMP"/code? | grep -c '^503 ' || true)
l7_stop_proxy
uo=$(grep -c '" 503 UO ' "$L7_TMP/access.log" || true)
counted=$(awk 'index($0, "sluice_pool_overflows_total{") == 1 {s += $NF} END {print s + 0}' "$L7_TMP/metrics.txt")
connections=$(python3 -c "
import json
peers = {json.loads(l)['peer'] for l in open('$L7_TMP/v1-a.jsonl')}
print(len(peers))")
echo "200: $ok, 503: $overflowed (UO in the access log: $uo, sluice_pool_overflows_total: $counted); proxy connections at the backend: $connections"
((ok >= 1 && ok <= 3 && ok + overflowed == 8)) || l7_fail "expected 1-3 answers and the rest 503, got $ok and $overflowed"
((uo == overflowed && counted == overflowed)) || l7_fail "every 503 should be an overflow (UO), counted: $uo logged, $counted counted"
((connections <= 2)) || l7_fail "maxConnections 1 let $connections connections open (at most 2: one per worker)"
# The cluster's live figures (all workers) are back to 0 once everything ended.
for gauge in active_requests pending_requests connections retries_outstanding; do
  line=$(grep "^sluice_cluster_${gauge}{destination_service=\"productpage\",destination_version=\"v1\",destination_port=\"$PORT\"}" \
    "$L7_TMP/metrics.txt" || true)
  [[ -n $line ]] || l7_fail "no sluice_cluster_$gauge for productpage v1"
  [[ ${line##* } == 0 ]] || l7_fail "sluice_cluster_$gauge still ${line##* } after every request ended"
done
echo "PASS: the circuit breaker counts the whole cluster over both workers"

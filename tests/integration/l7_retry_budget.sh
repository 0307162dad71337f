#!/usr/bin/env bash
# connectionPool.http.maxRetries is Envoy's max_retries circuit breaker: at
# most that many retries outstanding (backing off or in flight) to a subset
# cluster. Two backends answer 503 after 600 ms; `attempts: 3` on 5xx and
# `maxRetries: 1`; 4 requests at once on one worker. Their first attempts
# fail together: the first to fail retries (and keeps the one retry slot
# through its 3 retries, ~2 s), the 3 others find the budget spent and end
# with their 503 at once. So the backends see 4 + 3 = 7 attempts (16
# without the limit), 3 retries and 3 retry overflows are counted. Timing
# margin: the 4 curls must start within 600 ms of each other.
source "$(dirname "$0")/l7_lib.sh"

PORT=28096
LISTEN=127.77.0.1:18096
l7_pybackend v1-a 127.77.11.2 "$PORT" --status 503 --delay-ms 600 --record "$L7_TMP/v1-a.jsonl"
l7_pybackend v1-b 127.77.12.2 "$PORT" --status 503 --delay-ms 600 --record "$L7_TMP/v1-b.jsonl"
l7_productpage_config "$L7_TMP/cfg" "$PORT"
l7_virtual_service >"$L7_TMP/cfg/routing.yaml" <<'YAML'
  - retries: {attempts: 3, retryOn: "5xx"}
    route: [{destination: {host: productpage, subset: v1}}]
YAML
l7_subsets_rule --policy '{connectionPool: {http: {maxRetries: 1}}}' v1 >>"$L7_TMP/cfg/routing.yaml"
l7_proxy "$L7_TMP/cfg" "$LISTEN" "$PORT" --workers 1

pids=()
for i in 1 2 3 4; do
  curl -s -o /dev/null -m 20 -w '%{http_code}\n' "http://$LISTEN/r$i" >"$L7_TMP/code$i" &
  pids+=($!)
done
wait "${pids[@]}"
codes=$(cat "$L7_TMP"/code? | sort | uniq -c | awk '{print $2 "x" $1}' | xargs)
attempts=$(cat "$L7_TMP/v1-a.jsonl" "$L7_TMP/v1-b.jsonl" | wc -l)
l7_stop_proxy
sum_metric() { awk -v m="$1" 'index($0, m "{") == 1 {s += $NF} END {print s + 0}' "$L7_TMP/metrics.txt"; }
retries=$(sum_metric sluice_retries_total)
overflows=$(sum_metric sluice_retry_overflows_total)
echo "codes: $codes; attempts at the backends: $attempts; retries: $retries; retry overflows: $overflows"
[[ $codes == "503x4" ]] || l7_fail "every request should end 503, got: $codes"
((attempts == 7)) || l7_fail "expected 7 attempts (4 first + 3 retries of one request), got $attempts"
((retries == 3 && overflows == 3)) || l7_fail "expected 3 retries and 3 retry overflows, got $retries and $overflows"
grep -q '^sluice_retry_overflows_total{.*destination_version="v1"' "$L7_TMP/metrics.txt" ||
  l7_fail "retry overflows are not labelled with their subset"
echo "PASS: maxRetries 1 lets one retry chain run and refuses the other three"

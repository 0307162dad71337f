#!/usr/bin/env bash
# Retries back off as Envoy's do by default: before retry n a random wait in
# [0, (2^n - 1) x 25 ms] (at most 250 ms). Two backends that always answer
# 503, `attempts: 3` on 5xx: each of 40 requests makes 4 attempts, and the
# three waits add up to 25/2 + 75/2 + 175/2 = 137.5 ms on average (standard
# deviation 55 ms per request, 8.8 ms for the mean of 40), plus up to one
# 10 ms deadline tick per wait. The mean must lie in [90, 200] ms: more than
# 5 standard deviations from 137.5 + tick on either side, while retries
# without a back-off take a few ms.
source "$(dirname "$0")/l7_lib.sh"

PORT=28091
LISTEN=127.77.0.1:18091
l7_pybackend v1-a 127.77.11.2 "$PORT" --status 503 --record "$L7_TMP/v1-a.jsonl"
l7_pybackend v1-b 127.77.12.2 "$PORT" --status 503 --record "$L7_TMP/v1-b.jsonl"
l7_productpage_config "$L7_TMP/cfg" "$PORT"
l7_virtual_service >"$L7_TMP/cfg/routing.yaml" <<'YAML'
  - retries: {attempts: 3, retryOn: "5xx"}
    route: [{destination: {host: productpage, subset: v1}}]
YAML
l7_subsets_rule --policy '{loadBalancer: {simple: ROUND_ROBIN}}' v1 >>"$L7_TMP/cfg/routing.yaml"
l7_proxy "$L7_TMP/cfg" "$LISTEN" "$PORT" --workers 1

: >"$L7_TMP/times"
for i in $(seq 40); do
  curl -s -o /dev/null -m 5 -H 'Host: productpage' -w '%{http_code} %{time_total}\n' "http://$LISTEN/r$i" >>"$L7_TMP/times"
done
codes=$(awk '{print $1}' "$L7_TMP/times" | sort | uniq -c | awk '{print $2 "x" $1}' | xargs)
[[ $codes == "503x40" ]] || l7_fail "every request should end 503 after its retries, got: $codes"
attempts=$(cat "$L7_TMP/v1-a.jsonl" "$L7_TMP/v1-b.jsonl" | wc -l)
[[ $attempts -eq 160 ]] || l7_fail "expected 4 attempts per request (160 at the backends), got $attempts"
mean_ms=$(awk '{s += $2} END {printf "%.1f", 1000 * s / NR}' "$L7_TMP/times")
echo "40 requests, 160 attempts, mean time per request $mean_ms ms (expected ~140-150 ms)"
awk -v m="$mean_ms" 'BEGIN {exit !(m >= 90 && m <= 200)}' || l7_fail "mean $mean_ms ms outside [90, 200] ms"
echo "PASS: retries back off (mean $mean_ms ms for three waits)"

#!/usr/bin/env bash
# Retries back off as Envoy's do: before retry n a random wait in
# [0, (2^n - 1) x base] (at most 10 x base), base 25 ms by default or
# `retries.backoff`; and a retry avoids the host that just failed unless
# `retryIgnorePreviousHosts: false`. Two backends that always answer 503.
#  1. `attempts: 3` on 5xx, default back-off, ROUND_ROBIN: each of 40
#     requests makes 4 attempts, and the three waits add up to 25/2 + 75/2
#     + 175/2 = 137.5 ms on average (standard deviation 55 ms per request,
#     8.8 ms for the mean of 40), plus up to one 10 ms deadline tick per
#     wait. The mean must lie in [90, 200] ms: more than 5 standard
#     deviations from 137.5 + ticks on either side, while retries without
#     a back-off take a few ms.
#  2. `attempts: 2, backoff: 100ms`: the two waits add up to 50 + 150 =
#     200 ms on average (standard deviation 91 ms per request, 20 ms for
#     the mean of 20), plus up to 20 ms of ticks: the mean must lie in
#     [120, 300] ms (4 standard deviations; the default base would give
#     ~50 ms).
#  3. `attempts: 1`, RANDOM between the two backends, 40 requests each with
#     and without `retryIgnorePreviousHosts: false`: by default a retry
#     re-picks (5 picks in all) while it draws the host that failed, so
#     both attempts land on one host with probability 1/32 (expected 1.25
#     of 40; at most 6 allowed, P(>= 7) ~ 1e-4); with `false` it is 1/2
#     (expected 20, standard deviation 3.2; at least 8 required, 3.8
#     standard deviations below).
source "$(dirname "$0")/l7_lib.sh"

PORT=28091
LISTEN=127.77.0.1:18091
l7_pybackend v1-a 127.77.11.2 "$PORT" --status 503 --record "$L7_TMP/v1-a.jsonl"
l7_pybackend v1-b 127.77.12.2 "$PORT" --status 503 --record "$L7_TMP/v1-b.jsonl"
l7_productpage_config "$L7_TMP/cfg" "$PORT"

# phase RETRIES LB REQUESTS: a proxy whose one route retries as RETRIES (YAML
# flow) over subset v1 balanced by LB; REQUESTS requests, each "CODE SECONDS"
# in $L7_TMP/times; the backends' records start empty.
phase() {
  [[ -n ${L7_PROXY_PID:-} ]] && l7_stop_proxy
  : >"$L7_TMP/v1-a.jsonl"
  : >"$L7_TMP/v1-b.jsonl"
  l7_virtual_service >"$L7_TMP/cfg/routing.yaml" <<YAML
  - retries: $1
    route: [{destination: {host: productpage, subset: v1}}]
YAML
  l7_subsets_rule --policy "{loadBalancer: {simple: $2}}" v1 >>"$L7_TMP/cfg/routing.yaml"
  l7_proxy "$L7_TMP/cfg" "$LISTEN" "$PORT" --workers 1
  : >"$L7_TMP/times"
  local i
  for i in $(seq "$3"); do
    curl -s -o /dev/null -m 5 -H 'Host: productpage' -w '%{http_code} %{time_total}\n' "http://$LISTEN/r$i" >>"$L7_TMP/times"
  done
  local codes
  codes=$(awk '{print $1}' "$L7_TMP/times" | sort | uniq -c | awk '{print $2 "x" $1}' | xargs)
  [[ $codes == "503x$3" ]] || l7_fail "every request should end 503 after its retries, got: $codes"
}
mean_ms() { awk '{s += $2} END {printf "%.1f", 1000 * s / NR}' "$L7_TMP/times"; }
attempts() { cat "$L7_TMP/v1-a.jsonl" "$L7_TMP/v1-b.jsonl" | wc -l; }
# same_host: requests whose attempts all reached one backend.
same_host() {
  python3 - "$L7_TMP/v1-a.jsonl" "$L7_TMP/v1-b.jsonl" <<'PY'
import json, sys
hosts = {}
for path in sys.argv[1:]:
    for line in open(path):
        hosts.setdefault(json.loads(line)["target"], set()).add(path)
print(sum(1 for h in hosts.values() if len(h) == 1))
PY
}

phase '{attempts: 3, retryOn: "5xx"}' ROUND_ROBIN 40
[[ $(attempts) -eq 160 ]] || l7_fail "expected 4 attempts per request (160 at the backends), got $(attempts)"
m=$(mean_ms)
echo "default back-off: 40 requests, 160 attempts, mean time per request $m ms (expected ~140-150 ms)"
awk -v m="$m" 'BEGIN {exit !(m >= 90 && m <= 200)}' || l7_fail "mean $m ms outside [90, 200] ms"

phase '{attempts: 2, retryOn: "5xx", backoff: 100ms}' ROUND_ROBIN 20
[[ $(attempts) -eq 60 ]] || l7_fail "expected 3 attempts per request (60 at the backends), got $(attempts)"
m=$(mean_ms)
echo "backoff 100ms: 20 requests, 60 attempts, mean time per request $m ms (expected ~200-220 ms)"
awk -v m="$m" 'BEGIN {exit !(m >= 120 && m <= 300)}' || l7_fail "mean $m ms outside [120, 300] ms with backoff 100ms"

phase '{attempts: 1, retryOn: "5xx"}' RANDOM 40
[[ $(attempts) -eq 80 ]] || l7_fail "expected 2 attempts per request (80 at the backends), got $(attempts)"
avoided=$(same_host)
phase '{attempts: 1, retryOn: "5xx", retryIgnorePreviousHosts: false}' RANDOM 40
[[ $(attempts) -eq 80 ]] || l7_fail "expected 2 attempts per request (80 at the backends), got $(attempts)"
allowed=$(same_host)
echo "both attempts on one host: $avoided of 40 by default (expected ~1.25), $allowed of 40 with retryIgnorePreviousHosts false (expected ~20)"
((avoided <= 6)) || l7_fail "$avoided of 40 retries went back to the host that failed (previous hosts are avoided by default)"
((allowed >= 8)) || l7_fail "only $allowed of 40 retries went back to the host that failed with retryIgnorePreviousHosts false"
echo "PASS: retries back off (25ms and 100ms bases) and avoid the failed host unless told not to"

#!/usr/bin/env bash
# Request bodies are kept up to the per-request buffer limit (64 KiB by
# default) so that retries and mirrors carry them whole, checked byte for
# byte at the recording backends:
#  - PUT (idempotent), Content-Length and chunked, retried on a 503: both
#    attempts carry the whole body;
#  - POST retried on connect-failure (nothing was sent): the body arrives whole;
#  - POST answered 503 is not retried (non-idempotent, it was sent);
#  - a mirrored POST carries its body to the mirror;
#  - a 100 KiB PUT (over the limit) streams, is not retried, and is counted.
source "$(dirname "$0")/l7_lib.sh"

PORT=28089
LISTEN=127.77.0.1:18089
l7_pybackend v1-a 127.77.11.2 "$PORT" --status 503 --record "$L7_TMP/v1-a.jsonl"
l7_pybackend v1-b 127.77.12.2 "$PORT" --record "$L7_TMP/v1-b.jsonl"
# v2-a (127.77.13.2) has no listener: every connect to it is refused.
l7_pybackend v2-b 127.77.14.2 "$PORT" --record "$L7_TMP/v2-b.jsonl"
l7_pybackend v3-a 127.77.15.2 "$PORT" --record "$L7_TMP/v3-a.jsonl"
l7_productpage_config "$L7_TMP/cfg" "$PORT"
cat >>"$L7_TMP/cfg/service.yaml" <<'YAML'
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: productpage-v3-a, namespace: default}
spec:
  address: 127.77.15.2
  labels: {app: productpage, version: v3}
YAML
l7_virtual_service >"$L7_TMP/cfg/routing.yaml" <<'YAML'
  - match: [{uri: {prefix: /v1/}}]
    retries: {attempts: 3, retryOn: "5xx"}
    route: [{destination: {host: productpage, subset: v1}}]
  - match: [{uri: {prefix: /v2/}}]
    retries: {attempts: 3, retryOn: "connect-failure"}
    route: [{destination: {host: productpage, subset: v2}}]
    mirror: {host: productpage, subset: v3}
    mirrorPercentage: {value: 100}
YAML
l7_subsets_rule --policy '{loadBalancer: {simple: ROUND_ROBIN}}' v1 v2 v3 >>"$L7_TMP/cfg/routing.yaml"
l7_proxy "$L7_TMP/cfg" "$LISTEN" "$PORT" --workers 1

# make_bodies NAME:BYTES...: bodies that differ per request, with binary-safe text.
make_bodies() {
  python3 - "$L7_TMP" "$@" <<'PY'
import sys
for spec in sys.argv[2:]:
    name, size = spec.split(":")
    with open(f"{sys.argv[1]}/{name}.body", "w") as f:
        f.write((name + ":" + "abcdefghijklmnopqrstuvwxyz0123456789" * (int(size) // 36 + 1))[:int(size)])
PY
}
# send METHOD PATH NAME [curl args]: prints the status code.
send() {
  local method=$1 path=$2 name=$3
  shift 3
  curl -s -o /dev/null -w '%{http_code}' -X "$method" -H 'Host: productpage' --data-binary "@$L7_TMP/$name.body" \
    "$@" "http://$LISTEN$path"
}
# index_records: "FILE PATH METHOD BYTES SHA256" of every record the backends
# wrote so far, in records.txt, for `received`. One python start per part of
# the test, not one per lookup (each costs up to a second on a busy runner).
index_records() {
  python3 - "$L7_TMP"/*.jsonl >"$L7_TMP/records.txt" <<'PY'
import hashlib, json, os, sys
for path in sys.argv[1:]:
    if not os.path.exists(path):   # the glob matched nothing
        continue
    for line in open(path):
        r = json.loads(line)
        body = r["body"].encode("latin-1")
        print(os.path.basename(path), r["target"], r["method"], len(body), hashlib.sha256(body).hexdigest())
PY
}
# received FILE PATH: "METHOD BYTES SHA256" of each record for PATH (as of the last index_records), one a line.
received() { awk -v f="$(basename "$1")" -v t="$2" '$1 == f && $2 == t {print $3, $4, $5}' "$L7_TMP/records.txt"; }
expect_whole() {   # FILE PATH NAME METHOD COUNT: COUNT records of PATH, each the exact body
  local want got
  want="$4 $(stat -c %s "$L7_TMP/$3.body") $(sha256sum "$L7_TMP/$3.body" | cut -d' ' -f1)"
  got=$(received "$1" "$2" | sort | uniq -c | awk '{$1 = $1; print}')
  [[ $got == "$5 $want" ]] || l7_fail "$2 at $(basename "$1"): expected $5 × '$want', got '${got:-nothing}'"
}
make_bodies put-{1..4}:20000 post-{1..4}:30000 post503-{1..4}:1000 big-{1..4}:102400

# 1. PUT retried on 503, Content-Length and chunked: the whole body on both attempts.
for i in 1 2 3 4; do
  extra=()
  ((i % 2 == 0)) && extra=(-H 'Transfer-Encoding: chunked')
  code=$(send PUT "/v1/put-$i" "put-$i" "${extra[@]}")
  [[ $code == 200 ]] || l7_fail "PUT /v1/put-$i answered $code, expected 200 after a retry"
done
index_records
for i in 1 2 3 4; do expect_whole "$L7_TMP/v1-b.jsonl" "/v1/put-$i" "put-$i" PUT 1; done
retried=0
for i in 1 2 3 4; do retried=$((retried + $(received "$L7_TMP/v1-a.jsonl" "/v1/put-$i" | wc -l))); done
((retried >= 2)) || l7_fail "only $retried of 4 PUTs met the 503 backend: the retry path was not exercised"
for i in 1 2 3 4; do
  if [[ -n $(received "$L7_TMP/v1-a.jsonl" "/v1/put-$i") ]]; then expect_whole "$L7_TMP/v1-a.jsonl" "/v1/put-$i" "put-$i" PUT 1; fi
done
echo "PUT bodies retried on 503: $retried of 4 went to the 503 backend first, all 4 reached v1-b whole"

# 2. POST on connect-failure: retried (nothing sent), body whole; mirrored whole to v3 too.
for i in 1 2 3 4; do
  extra=()
  ((i % 2 == 0)) && extra=(-H 'Transfer-Encoding: chunked')
  code=$(send POST "/v2/post-$i" "post-$i" "${extra[@]}")
  [[ $code == 200 ]] || l7_fail "POST /v2/post-$i answered $code, expected 200 after a connect-failure retry"
done
for _ in $(seq 50); do   # mirrors are fire-and-forget: wait for the 4 (at most 5 s)
  [[ $(grep -c '"productpage-shadow"' "$L7_TMP/v3-a.jsonl" 2>/dev/null) -ge 4 ]] && break
  sleep 0.1
done
index_records
for i in 1 2 3 4; do expect_whole "$L7_TMP/v2-b.jsonl" "/v2/post-$i" "post-$i" POST 1; done
for i in 1 2 3 4; do expect_whole "$L7_TMP/v3-a.jsonl" "/v2/post-$i" "post-$i" POST 1; done
shadow=$(grep -c '"productpage-shadow"' "$L7_TMP/v3-a.jsonl" || true)
((shadow == 4)) || l7_fail "expected 4 mirrored requests with the -shadow host, got $shadow"
echo "POST bodies: retried on connect-failure and mirrored, whole at v2-b and v3-a"

# 3. A POST that got a 503 is never retried: it was sent, and POST is not idempotent.
codes=""
for i in 1 2 3 4; do codes+="$(send POST "/v1/post503-$i" "post503-$i") "; done
index_records
seen=0
fivexx=$(grep -o 503 <<<"$codes" | wc -l)
for i in 1 2 3 4; do
  seen=$((seen + $(received "$L7_TMP/v1-a.jsonl" "/v1/post503-$i" | wc -l) + $(received "$L7_TMP/v1-b.jsonl" "/v1/post503-$i" | wc -l)))
done
a_count=0
for i in 1 2 3 4; do a_count=$((a_count + $(received "$L7_TMP/v1-a.jsonl" "/v1/post503-$i" | wc -l))); done
echo "POST on the 5xx route: client codes $codes; backends saw $seen requests, $a_count at the 503 backend"
((seen == 4)) || l7_fail "4 POSTs reached the backends $seen times: a non-idempotent request was retried"
((fivexx == a_count && a_count >= 1)) || l7_fail "503s at the client ($fivexx) differ from POSTs at the 503 backend ($a_count)"

# 4. Over the limit: a 100 KiB PUT streams whole but is not retried or mirrored after sending.
big_codes=()
for i in 1 2 3 4; do big_codes+=("$(send PUT "/v1/big-$i" "big-$i")"); done
index_records
big_503=0
for i in 1 2 3 4; do
  code=${big_codes[$((i - 1))]}
  n_a=$(received "$L7_TMP/v1-a.jsonl" "/v1/big-$i" | wc -l)
  if ((n_a == 1)); then
    [[ $code == 503 ]] || l7_fail "a 100 KiB PUT that got a 503 answered $code: it was retried without its body"
    expect_whole "$L7_TMP/v1-a.jsonl" "/v1/big-$i" "big-$i" PUT 1
    big_503=$((big_503 + 1))
  else
    [[ $code == 200 ]] || l7_fail "100 KiB PUT /v1/big-$i answered $code"
    expect_whole "$L7_TMP/v1-b.jsonl" "/v1/big-$i" "big-$i" PUT 1
  fi
done
((big_503 >= 1)) || l7_fail "no 100 KiB PUT met the 503 backend"
l7_stop_proxy
grep -E 'sluice_(request_body_over_limit|retries_body_not_kept|retries)_total\{' "$L7_TMP/metrics.txt"
over=$(awk '/^sluice_request_body_over_limit_total\{/ {s += $NF} END {print s + 0}' "$L7_TMP/metrics.txt")
lost=$(awk '/^sluice_retries_body_not_kept_total\{/ {s += $NF} END {print s + 0}' "$L7_TMP/metrics.txt")
((over == 4)) || l7_fail "sluice_request_body_over_limit_total is $over, expected 4"
((lost == big_503)) || l7_fail "sluice_retries_body_not_kept_total is $lost, expected $big_503"
echo "PASS: bodies up to the limit are retried and mirrored whole; larger ones stream, are not retried, and are counted"

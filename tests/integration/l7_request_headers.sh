#!/usr/bin/env bash
# The headers the proxy adds, as Envoy does in Istio, checked at the backend
# (the recording backend writes down every request as it arrived):
#  1. a request without x-request-id gets a random version-4 UUID, the same
#     one at the backend, at the mirror and in the access log, and a new one
#     per request (200 requests: 200 distinct ids); a client's x-request-id
#     passes unchanged and is not duplicated;
#  2. x-forwarded-proto: http is added when absent, kept when present;
#  3. x-forwarded-for passes unchanged by default; with
#     --append-x-forwarded-for the client's address is appended to the
#     joined list (or becomes the header);
#  4. responses carry x-envoy-upstream-service-time, the milliseconds the
#     backend took: >= its 150 ms delay, and less than the whole request;
#  5. --no-generate-request-id turns 1 off.
source "$(dirname "$0")/l7_lib.sh"

PORT=28089
l7_pybackend v1-a 127.77.11.2 "$PORT" --record "$L7_TMP/v1.jsonl"
l7_pybackend v2-a 127.77.13.2 "$PORT" --record "$L7_TMP/mirror.jsonl"
l7_pybackend v1-b 127.77.12.2 "$PORT" --record "$L7_TMP/slow.jsonl" --delay-ms 150
l7_productpage_config "$L7_TMP/cfg" "$PORT"
# v1-b becomes the only member of subset "slow"; v2-b leaves v2 (the mirror).
sed -i '/productpage-v1-b/,/version: v1}/ s/version: v1}/version: slow}/; /productpage-v2-b/,/version: v2}/ s/version: v2}/version: v2-unused}/' \
  "$L7_TMP/cfg/service.yaml"
l7_virtual_service >"$L7_TMP/cfg/routing.yaml" <<'YAML'
  - match:
    - uri: {prefix: /slow}
    route:
    - destination: {host: productpage, subset: slow}
  - route:
    - destination: {host: productpage, subset: v1}
    mirror: {host: productpage, subset: v2}
    mirrorPercentage: {value: 100}
YAML
l7_subsets_rule v1 v2 slow >>"$L7_TMP/cfg/routing.yaml"
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18089 "$PORT" --workers 2 --access-log "$L7_TMP/access.jsonl" \
  --access-log-format json
URL=http://127.77.0.1:18089

# Reads the recorded requests of FILE whose target starts with PREFIX and
# prints the value of header NAME (all fields of that name, joined by " | ").
recorded() {
  python3 - "$@" <<'PY'
import json, sys
path, prefix, name = sys.argv[1:4]
for line in open(path):
    r = json.loads(line)
    if r["target"].startswith(prefix):
        print(" | ".join(v for n, v in r["headers"] if n.lower() == name))
PY
}

# 1. Generated ids: one per request, UUID v4, the same at the mirror and in the log.
curl -s -o /dev/null "$URL/gen/[1-200]"
# Mirrors are fire-and-forget and the access log is flushed every 10 ms:
# wait (at most 10 s) until both have all 200.
for _ in $(seq 100); do
  [[ $(grep -c '"/gen/' "$L7_TMP/mirror.jsonl" 2>/dev/null) -ge 200 &&
     $(grep -c '"/gen/' "$L7_TMP/access.jsonl" 2>/dev/null) -ge 200 ]] && break
  sleep 0.1
done
recorded "$L7_TMP/v1.jsonl" /gen/ x-request-id >"$L7_TMP/ids.txt"
total=$(wc -l <"$L7_TMP/ids.txt")
distinct=$(sort -u "$L7_TMP/ids.txt" | wc -l)
v4=$(grep -cE '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' "$L7_TMP/ids.txt" || true)
echo "generated: $total requests, $distinct distinct ids, $v4 UUID v4"
((total == 200 && distinct == 200 && v4 == 200)) || l7_fail "expected 200 distinct version-4 ids at the backend"
mirrored=$(recorded "$L7_TMP/mirror.jsonl" /gen/ x-request-id | sort -u)
[[ "$mirrored" == "$(sort -u "$L7_TMP/ids.txt")" ]] || l7_fail "the mirror did not see the same ids as the backend"
logged=$(python3 -c "
import json
for line in open('$L7_TMP/access.jsonl'):
    r = json.loads(line)
    if r['path'].startswith('/gen/'): print(r['request_id'])
" | sort -u)
[[ "$logged" == "$(sort -u "$L7_TMP/ids.txt")" ]] || l7_fail "the access log's request_id differs from the ids sent upstream"
echo "PASS: a request without x-request-id gets a fresh UUID v4, the same upstream, at the mirror and in the log"

# A client's own id passes once, unchanged; so does its x-forwarded-proto.
curl -s -o /dev/null -H 'x-request-id: client-chosen-42' -H 'x-forwarded-proto: https' "$URL/own"
own=$(recorded "$L7_TMP/v1.jsonl" /own x-request-id)
xfp=$(recorded "$L7_TMP/v1.jsonl" /own x-forwarded-proto)
[[ "$own" == client-chosen-42 ]] || l7_fail "the client's x-request-id arrived as '$own'"
[[ "$xfp" == https ]] || l7_fail "the client's x-forwarded-proto arrived as '$xfp'"
added_xfp=$(recorded "$L7_TMP/v1.jsonl" /gen/ x-forwarded-proto | sort -u)
[[ "$added_xfp" == http ]] || l7_fail "x-forwarded-proto was not added ('$added_xfp')"
echo "PASS: a client's x-request-id and x-forwarded-proto pass once, unchanged; x-forwarded-proto: http added otherwise"

# 3a. x-forwarded-for untouched by default.
curl -s -o /dev/null -H 'x-forwarded-for: 203.0.113.7' "$URL/xff-default"
xff=$(recorded "$L7_TMP/v1.jsonl" /xff-default x-forwarded-for)
[[ "$xff" == 203.0.113.7 ]] || l7_fail "x-forwarded-for changed without --append-x-forwarded-for: '$xff'"

# 4. x-envoy-upstream-service-time: the backend's 150 ms delay, not the whole request.
read -r service_ms total_s < <(curl -s -o /dev/null -w '%header{x-envoy-upstream-service-time} %{time_total}\n' \
  "$URL/slow")
echo "x-envoy-upstream-service-time: ${service_ms:-none} ms, request ${total_s} s"
[[ "$service_ms" =~ ^[0-9]+$ ]] || l7_fail "no numeric x-envoy-upstream-service-time on a proxied response"
python3 -c "import sys; s=int('$service_ms'); t=float('$total_s')*1000; sys.exit(0 if 150 <= s <= t + 1 else 1)" ||
  l7_fail "x-envoy-upstream-service-time $service_ms ms is not between the backend's 150 ms delay and the request's time"
echo "PASS: x-envoy-upstream-service-time shows the backend's time"
l7_stop_proxy

# 3b and 5: a second proxy with --append-x-forwarded-for and --no-generate-request-id.
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18090 "$PORT" --workers 1 --append-x-forwarded-for --no-generate-request-id
URL=http://127.77.0.1:18090
curl -s -o /dev/null -H 'x-forwarded-for: 203.0.113.7' -H 'X-Forwarded-For: 198.51.100.9' "$URL/xff-list"
curl -s -o /dev/null "$URL/xff-none"
list=$(recorded "$L7_TMP/v1.jsonl" /xff-list x-forwarded-for)
alone=$(recorded "$L7_TMP/v1.jsonl" /xff-none x-forwarded-for)
noid=$(recorded "$L7_TMP/v1.jsonl" /xff-none x-request-id)
echo "x-forwarded-for appended: '$list' and '$alone'; x-request-id without generation: '${noid}'"
[[ "$list" == "203.0.113.7, 198.51.100.9, 127.0.0.1" ]] || l7_fail "x-forwarded-for list not joined and appended: '$list'"
[[ "$alone" == 127.0.0.1 ]] || l7_fail "x-forwarded-for not created with the client's address: '$alone'"
[[ -z "$noid" ]] || l7_fail "--no-generate-request-id still sent x-request-id '$noid'"
echo "PASS: --append-x-forwarded-for appends the client's address; --no-generate-request-id adds none"

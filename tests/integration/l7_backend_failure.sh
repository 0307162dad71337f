#!/usr/bin/env bash
# A backend killed under load: with retries on, clients see no error at all;
# outlier detection ejects the dead backend and lets it serve again once
# baseEjectionTime (3 s) has passed and it is back.
source "$(dirname "$0")/l7_lib.sh"
command -v wrk >/dev/null || l7_skip_or_fail "wrk not installed"

PORT=28083
for n in v1-a:11 v1-b:12; do l7_nginx "${n%:*}" "127.77.${n#*:}.2" "$PORT"; done
l7_productpage_config "$L7_TMP/cfg" "$PORT"
cat >"$L7_TMP/cfg/routing.yaml" <<'YAML'
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - retries: {attempts: 3, retryOn: "5xx,connect-failure,reset,gateway-error"}
    route:
    - destination: {host: productpage, subset: v1}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 3s, maxEjectionPercent: 100}
  subsets:
  - {name: v1, labels: {version: v1}}
YAML
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18083 "$PORT" --workers 2

wrk -t2 -c16 -d3s http://127.77.0.1:18083/ >"$L7_TMP/wrk.out" 2>&1 &
load=$!
sleep 1
kill -KILL "$L7_PID_v1_a"
killed_at=$(date +%s.%N)
sleep 0.5
l7_nginx v1-a 127.77.11.2 "$PORT"   # back long before the 3 s ejection ends
wait "$load"
cat "$L7_TMP/wrk.out"
requests=$(awk '/requests in/ {print $1}' "$L7_TMP/wrk.out")
((requests > 1000)) || l7_fail "load too small to mean anything: $requests requests"
if grep -qE 'Non-2xx|Socket errors' "$L7_TMP/wrk.out"; then l7_fail "clients saw errors while a backend died"; fi

# The load ends 2 s after the kill, inside the ejection: v1-a, although up
# again, gets traffic only once baseEjectionTime has passed.
deadline=$(awk -v t="$killed_at" 'BEGIN {printf "%.3f", t + 10}')
back=
while awk -v d="$deadline" -v n="$(date +%s.%N)" 'BEGIN {exit !(n < d)}'; do
  probe=$(curl -s -m 2 "http://127.77.0.1:18083/[1-10]" || true)
  if grep -q v1-a <<<"$probe"; then back=$(date +%s.%N); break; fi
  sleep 0.2
done
[[ -n $back ]] || l7_fail "v1-a never served again after it came back"
after=$(awk -v a="$back" -v k="$killed_at" 'BEGIN {printf "%.1f", a - k}')
echo "v1-a served again ${after}s after the kill"
awk -v s="$after" 'BEGIN {exit !(s >= 2.5)}' || l7_fail "v1-a served after ${after}s: ejection shorter than baseEjectionTime"
l7_stop_proxy
grep -E 'sluice_(outlier_ejections|retries)_total' "$L7_TMP/metrics.txt"
grep -qE 'sluice_outlier_ejections_total\{.*productpage-v1-a.*\} [1-9]' "$L7_TMP/metrics.txt" ||
  l7_fail "no ejection of v1-a recorded"
grep -qE 'sluice_retries_total\{.*\} [1-9]' "$L7_TMP/metrics.txt" || l7_fail "no retry recorded"
echo "PASS: zero client errors with a backend killed mid-load; ejected and back after baseEjectionTime"

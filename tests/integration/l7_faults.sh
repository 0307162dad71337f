#!/usr/bin/env bash
# Fault injection: fixedDelay 2s on 50% and abort 503 on 10% of requests
# (delay first, then abort, as Envoy's fault filter does).
# 400 requests. Tolerances (≈3.3σ of a binomial share at n=400):
#   delayed share 50 ± 8 points (σ = 2.5), aborted share 10 ± 5 points (σ = 1.5).
# A delayed request takes 2.0–2.6 s; an undelayed one under 1 s.
source "$(dirname "$0")/l7_lib.sh"

PORT=28082
for n in v1-a:11 v1-b:12; do l7_nginx "${n%:*}" "127.77.${n#*:}.2" "$PORT"; done
l7_productpage_config "$L7_TMP/cfg" "$PORT"
cat >"$L7_TMP/cfg/routing.yaml" <<'YAML'
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - fault:
      delay: {fixedDelay: 2s, percentage: {value: 50}}
      abort: {httpStatus: 503, percentage: {value: 10}}
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
YAML
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18082 "$PORT" --workers 2
curl -s --no-progress-meter -Z --parallel-immediate --parallel-max 200 -o /dev/null -w '%{http_code} %{time_total}\n' "http://127.77.0.1:18082/[1-400]" \
  >"$L7_TMP/out"
total=$(wc -l <"$L7_TMP/out")
read -r delayed aborted ok bad_timing < <(awk '
  { d = ($2 >= 1.95); delayed += d; if ($1 == 503) aborted++; else if ($1 == 200) ok++
    if (d && $2 > 2.6) bad++; if (!d && $2 > 1.0) bad++ }
  END { print delayed + 0, aborted + 0, ok + 0, bad + 0 }' "$L7_TMP/out")
echo "requests=$total delayed=$delayed aborted=$aborted ok=$ok out_of_band_timings=$bad_timing"
[[ $total -eq 400 ]] || l7_fail "expected 400 responses, got $total"
[[ $((aborted + ok)) -eq 400 ]] || l7_fail "responses other than 200/503"
((delayed >= 168 && delayed <= 232)) || l7_fail "delayed $delayed/400 outside 50% ± 8"
((aborted >= 20 && aborted <= 60)) || l7_fail "aborted $aborted/400 outside 10% ± 5"
((bad_timing == 0)) || l7_fail "$bad_timing requests neither ~2 s (delayed) nor fast"
l7_stop_proxy
grep -q 'sluice_faults_injected_total{.*kind="abort"} '"$aborted" "$L7_TMP/metrics.txt" ||
  l7_fail "abort counter does not say $aborted: $(grep faults "$L7_TMP/metrics.txt")"
grep -q 'response_code="503",response_flags="FI"' "$L7_TMP/metrics.txt" || l7_fail "no FI-flagged 503 in metrics"
echo "PASS: delay $delayed/400, abort $aborted/400 within tolerance"

#!/usr/bin/env bash
# LEAST_REQUEST sends fewer requests to a slow backend than ROUND_ROBIN.
# Subset v1 = a fast nginx (v1-a) and a recording backend that answers after
# 20 ms (v1-b). The same wrk load (16 connections, 3 s) runs against
# ROUND_ROBIN, then LEAST_REQUEST; the slow backend's share comes from the
# proxy's istio_requests_total per destination_workload.
# ROUND_ROBIN gives it 50% by construction. LEAST_REQUEST (power of two
# choices, drawn with replacement as Envoy does) still sends it the 25% of
# picks where both draws land on it, plus any pick where it is not busier;
# the pass mark is at most 0.6 × ROUND_ROBIN's share (30 points here).
source "$(dirname "$0")/l7_lib.sh"
command -v wrk >/dev/null || l7_skip_or_fail "wrk not installed"

PORT=28084
l7_nginx v1-a 127.77.11.2 "$PORT"
l7_pybackend v1-b 127.77.12.2 "$PORT" --delay-ms 20
l7_productpage_config "$L7_TMP/cfg" "$PORT"

slow_share() {   # POLICY → prints the slow backend's share in percent
  cat >"$L7_TMP/cfg/routing.yaml" <<YAML
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - destination: {host: productpage, subset: v1}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  trafficPolicy: {loadBalancer: {simple: $1}}
  subsets:
  - {name: v1, labels: {version: v1}}
YAML
  l7_proxy "$L7_TMP/cfg" 127.77.0.1:18084 "$PORT" --workers 1
  wrk -t2 -c16 -d3s http://127.77.0.1:18084/ >"$L7_TMP/wrk.$1" 2>&1
  l7_stop_proxy
  awk '/^istio_requests_total/ {
         n = $NF; if ($0 ~ /productpage-v1-b/) slow += n; total += n }
       END { printf "%.1f %d\n", 100 * slow / total, total }' "$L7_TMP/metrics.txt"
}

read -r rr rr_total < <(slow_share ROUND_ROBIN)
read -r lr lr_total < <(slow_share LEAST_REQUEST)
echo "slow backend share: ROUND_ROBIN $rr% of $rr_total, LEAST_REQUEST $lr% of $lr_total"
awk -v rr="$rr" -v lr="$lr" 'BEGIN {exit !(lr <= rr * 0.6)}' ||
  l7_fail "LEAST_REQUEST gave the slow backend $lr%, more than 0.6 × ROUND_ROBIN's $rr%"
echo "PASS: LEAST_REQUEST avoids the slow backend ($lr% vs $rr%)"

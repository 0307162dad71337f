#!/usr/bin/env bash
# 70/30 weighted routing is decided per request, not per connection: 10,000
# requests over keep-alive connections split within ±1.5 points of 70/30.
# Tolerance: the v1 share of n=10,000 Bernoulli(0.7) draws has σ = 0.46
# points, so ±1.5 points is a 3.3σ band (false failure rate ~1e-3).
source "$(dirname "$0")/l7_lib.sh"

PORT=28080
for n in v1-a:11 v1-b:12 v2-a:13 v2-b:14; do l7_nginx "${n%:*}" "127.77.${n#*:}.2" "$PORT"; done
l7_productpage_config "$L7_TMP/cfg" "$PORT"
cat >"$L7_TMP/cfg/routing.yaml" <<'YAML'
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - destination: {host: productpage, subset: v1}
      weight: 70
    - destination: {host: productpage, subset: v2}
      weight: 30
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18080 "$PORT" --workers 2

# Four curl processes, each 2,500 requests on one keep-alive connection.
clients=()
for c in 1 2 3 4; do
  curl -s -o /dev/null -w '%header{x-backend} %{num_connects}\n' "http://127.77.0.1:18080/[1-2500]" \
    >"$L7_TMP/out.$c" &
  clients+=($!)
done
wait "${clients[@]}"
cat "$L7_TMP"/out.* >"$L7_TMP/all"
total=$(wc -l <"$L7_TMP/all")
v1=$(grep -c '^v1-' "$L7_TMP/all" || true)
v2=$(grep -c '^v2-' "$L7_TMP/all" || true)
connects=$(awk '{s += $2} END {print s}' "$L7_TMP/all")
echo "requests=$total v1=$v1 v2=$v2 new_connections=$connects"
[[ $total -eq 10000 ]] || l7_fail "expected 10000 responses, got $total"
[[ $((v1 + v2)) -eq 10000 ]] || l7_fail "$((10000 - v1 - v2)) responses without a backend header"
[[ $connects -eq 4 ]] || l7_fail "expected 4 keep-alive connections, curl opened $connects"
share=$(awk -v a="$v1" 'BEGIN {printf "%.2f", a / 100}')
awk -v s="$share" 'BEGIN {exit !(s >= 68.5 && s <= 71.5)}' || l7_fail "v1 share $share% outside 70 ± 1.5"
# Both endpoints of each subset served (ROUND_ROBIN inside the subset).
for n in v1-a v1-b v2-a v2-b; do grep -q "^$n " "$L7_TMP/all" || l7_fail "$n served nothing"; done
l7_stop_proxy
grep -q 'istio_requests_total{.*destination_version="v1".*response_code="200"' "$L7_TMP/metrics.txt" ||
  l7_fail "metrics lack istio_requests_total for v1"
echo "PASS: v1 share $share% (70 ± 1.5) over 10,000 keep-alive requests"

#!/usr/bin/env bash
# Mirroring is fire-and-forget: with mirror → v2 at 100%, every request is
# answered by v1 and a copy reaches v2 with Host "<host>-shadow"; with the
# mirror backend down, clients see no difference.
source "$(dirname "$0")/l7_lib.sh"

PORT=28087
l7_nginx v1-a 127.77.11.2 "$PORT"
l7_pybackend v2-a 127.77.13.2 "$PORT" --record "$L7_TMP/mirror.jsonl"
l7_productpage_config "$L7_TMP/cfg" "$PORT"
sed -i '/productpage-v1-b/,/version: v1}/ s/version: v1}/version: v1-unused}/; /productpage-v2-b/,/version: v2}/ s/version: v2}/version: v2-unused}/' \
  "$L7_TMP/cfg/service.yaml"
cat >"$L7_TMP/cfg/routing.yaml" <<'YAML'
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - destination: {host: productpage, subset: v1}
    mirror: {host: productpage, subset: v2}
    mirrorPercentage: {value: 100}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
YAML
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18087 "$PORT" --workers 1
answers=$(curl -s -H 'Host: productpage' "http://127.77.0.1:18087/m/[1-50]" | sort | uniq -c)
for _ in $(seq 50); do   # mirrors are fire-and-forget: wait for them (at most 5 s)
  [[ $(grep -c '"/m/' "$L7_TMP/mirror.jsonl" 2>/dev/null) -ge 50 ]] && break
  sleep 0.1
done
mirrored=$(grep -c '"/m/' "$L7_TMP/mirror.jsonl" || true)
shadow=$(grep -c '"productpage-shadow"' "$L7_TMP/mirror.jsonl" || true)
echo "answers: $answers; mirrored: $mirrored (shadow host on $shadow)"
[[ $(awk '{print $2}' <<<"$answers") == v1-a && $(awk '{print $1}' <<<"$answers") -eq 50 ]] ||
  l7_fail "answers did not all come from v1"
((mirrored == 50 && shadow == 50)) || l7_fail "expected 50 mirrored requests with the -shadow host"

kill "$L7_PID_v2_a"
wait "$L7_PID_v2_a" 2>/dev/null || true
codes=$(curl -s -o /dev/null -w '%{http_code}\n' "http://127.77.0.1:18087/m/[1-50]" | sort | uniq -c)
echo "with the mirror backend down: $codes"
[[ $(awk '{print $1, $2}' <<<"$codes") == "50 200" ]] || l7_fail "a dead mirror changed client responses"
echo "PASS: mirror copies every request, never affects the response"

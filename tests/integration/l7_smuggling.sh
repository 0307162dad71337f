#!/usr/bin/env bash
# Request smuggling corpus, checked AT THE BACKEND: a raw-socket backend
# records every request it parses; each payload must be refused by the proxy
# or normalised into one request — never forwarded as two.
source "$(dirname "$0")/l7_lib.sh"

PORT=28085
l7_pybackend v1-a 127.77.11.2 "$PORT" --record "$L7_TMP/backend.jsonl"
l7_productpage_config "$L7_TMP/cfg" "$PORT"
cat >"$L7_TMP/cfg/routing.yaml" <<'YAML'
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - match: [{uri: {prefix: /admin}}]
    directResponse: {status: 403}
  - route:
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
# v1-b is not started: only v1-a is reachable; keep the subset to one endpoint.
sed -i '/productpage-v1-b/,/version: v1}/ s/version: v1}/version: v1-unused}/' "$L7_TMP/cfg/service.yaml"
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18085 "$PORT" --workers 1
python3 "$L7_SRC/l7_smuggling_client.py" 127.77.0.1:18085 "$L7_TMP/backend.jsonl" || l7_fail "smuggling corpus"
echo "PASS: every smuggling payload refused or normalised, none reached the backend as two requests"

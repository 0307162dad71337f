#!/usr/bin/env bash
# A weight change that sends traffic to a subset with no upstream connection
# yet, under concurrent keep-alive load: every request is answered. (The
# demo lost one request per client connection right after
# `weights productpage v1=99 v2=1`: each timed out unanswered.)
# Load: 16,000 requests over 8 keep-alive connections and two workers, each
# answered after 1 ms (`?delay_ms=1`, so the run lasts 2 s or more however
# fast the proxy is: without it the whole run could end before the change);
# the config moves from v1=100/v2=0 to v1=70/v2=30 while they run. Pass: all
# 16,000 answered 200 within the 2 s per-request limit, on the 8 connections
# (none reopened after a timeout), and v2 served some of them.
source "$(dirname "$0")/l7_lib.sh"

LOADGEN_BIN=${SLUICE_LOADGEN:-$L7_BUILD/tools/sluice-loadgen}
BACKEND_BIN=${SLUICE_TEST_BACKEND:-$L7_BUILD/tools/sluice-test-backend}
[[ -x $LOADGEN_BIN && -x $BACKEND_BIN ]] || { echo "FAIL: sluice-loadgen/sluice-test-backend not built" >&2; exit 1; }

PORT=28088
for n in v1-a:11 v1-b:12 v2-a:13 v2-b:14; do
  "$BACKEND_BIN" --name "${n%:*}" --http "$PORT" --bind "127.77.${n#*:}.2" 2>"$L7_TMP/backend-${n%:*}.log" &
  L7_PIDS+=($!)
  l7_wait_port "127.77.${n#*:}.2" "$PORT"
done
l7_productpage_config "$L7_TMP/cfg" "$PORT"
routing() {   # V1 V2: the VirtualService split and the DestinationRule (LEAST_REQUEST, Istio's default)
  cat >"$L7_TMP/cfg/routing.yaml.new" <<YAML
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - {destination: {host: productpage, subset: v1}, weight: $1}
    - {destination: {host: productpage, subset: v2}, weight: $2}
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
  mv "$L7_TMP/cfg/routing.yaml.new" "$L7_TMP/cfg/routing.yaml"
}
routing 100 0
l7_proxy "$L7_TMP/cfg" 127.77.0.1:18088 "$PORT" --workers 2

"$LOADGEN_BIN" http --url 'http://127.77.0.1:18088/?delay_ms=1' --count 16000 --concurrency 8 --keepalive \
  --timeout-s 30 --conn-timeout-ms 2000 >"$L7_TMP/load.json" 2>"$L7_TMP/load.err" &
load=$!
sleep 0.5   # the 8 connections are open and pooled upstream connections exist to v1 only
routing 70 30
kill -HUP "$L7_PROXY_PID"
for i in $(seq 1 50); do grep -q 'serving snapshot 2' "$L7_TMP/proxy.log" && break; sleep 0.1; done
grep -q 'serving snapshot 2' "$L7_TMP/proxy.log" || l7_fail "the proxy did not reload: $(cat "$L7_TMP/proxy.log")"
wait "$load" || l7_fail "loadgen failed: $(cat "$L7_TMP/load.err")"
cat "$L7_TMP/load.json"
python3 - "$L7_TMP/load.json" <<'PY' || l7_fail "requests were lost after the weight change"
import json, sys
j = json.load(open(sys.argv[1]))
v2 = sum(n for b, n in j["backends"].items() if b.startswith("v2-"))
ok = j["status"] == {"200": 16000} and j["errors"]["timeout"] == 0 and sum(j["errors"].values()) == 0
ok = ok and j["connections_opened"] == 8 and v2 > 0
print(f"200s: {j['status']}, errors: {j['errors']}, connections: {j['connections_opened']}, at v2: {v2}")
sys.exit(0 if ok else 1)
PY
echo "PASS: 16000/16000 answered across a weight change to a subset without upstream connections"

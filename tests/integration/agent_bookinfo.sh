#!/usr/bin/env bash
# Istio's bookinfo sample with its Kubernetes objects (tests/fixtures/bookinfo:
# Services, Deployments, Pods and EndpointSlices as kubectl prints them, no
# hand-written ServiceEntry) served end to end by sluiced on the team
# topology: reviews v1, v2, v3 are the Pods on backends 1-3.
#  - `sluicectl validate` accepts the fixture (the ingress Gateway and its
#    VirtualService are notes, not errors);
#  - requests from the client to the reviews cluster IP with end-user: jason
#    all reach reviews-v2; all others reach v1 and v3 (both seen, never v2);
#  - ratings' cluster IP reaches the ratings Pod on backend 4.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"
fixture="$here/../fixtures/bookinfo"

# The fixture's Pod names, one per backend namespace.
AGENT_BACKENDS=(reviews-v1 reviews-v2 reviews-v3 ratings-v1)
agent_setup bookinfo
rm -f "$AGENT_WORK"/config/*.yaml
cp "$fixture"/*.yaml "$AGENT_WORK/config/"

agent_check "sluicectl validate accepts the bookinfo fixture" "$SLUICECTL" validate "$AGENT_WORK/config"
agent_start

reviews=10.96.1.20 ratings=10.96.1.30
tally() {   # tally LOADGEN_JSON: "name=count ..." sorted
  agent_json "$1" '" ".join("%s=%d" % kv for kv in sorted((j.get("backends") or {}).items()))'
}
jason=$(agent_loadgen http --url "http://$reviews:9080/reviews/0" --count 100 --concurrency 4 --keepalive \
  --header "end-user: jason" --timeout-s 30)
others=$(agent_loadgen http --url "http://$reviews:9080/reviews/0" --count 200 --concurrency 4 --keepalive \
  --header "end-user: alice" --timeout-s 30)
plain=$(agent_loadgen http --url "http://$ratings:9080/ratings/0" --count 50 --concurrency 2 --timeout-s 30)
echo "jason: $(tally "$jason")"; echo "others: $(tally "$others")"; echo "ratings: $(tally "$plain")"

agent_check "end-user jason: all 100 requests reach reviews-v2" \
  test "$(tally "$jason")" = "reviews-v2=100"
# 200 requests split 50/50: each side is seen unless the split is broken
# (a fair split leaves one side empty with probability 2^-199).
agent_check "other users: only reviews-v1 and reviews-v3, both seen, 200 answers" \
  python3 -c 'import json, sys; b = json.loads(sys.argv[1]).get("backends") or {}
sys.exit(0 if set(b) == {"reviews-v1", "reviews-v3"} and sum(b.values()) == 200 else 1)' "$others"
agent_check "ratings cluster IP: all 50 requests reach ratings-v1" test "$(tally "$plain")" = "ratings-v1=50"
agent_finish

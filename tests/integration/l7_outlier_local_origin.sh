#!/usr/bin/env bash
# outlierDetection.splitExternalLocalOriginErrors through the proxy
# (docs/load-balancing.md, "Outlier detection"): subset v1 has a live nginx
# (v1-a) and an address nothing listens on (v1-b: every connect is refused),
# and both 5xx detectors are off (consecutive5xxErrors: 0).
#  - split, consecutiveLocalOriginFailures 2: v1-b's refused connects eject
#    it (sluice_outlier_ejections_total for v1-b >= 1) and then it is no
#    longer tried: of 40 requests (each answered 200 by v1-a, the default
#    retry policy covering connect failures), at most 4 attempts reach v1-b
#    (2 to eject it, plus the ones already on their way).
#  - not split (the default), same limit: local failures count as 503s
#    toward the disabled detectors only, so v1-b is never ejected and keeps
#    getting about half of the picks (LEAST_REQUEST over two hosts; at least
#    8 of 40 required, ~20 expected).
# Attempts at v1-b are sluice_upstream_connections_opened_total for it: each
# opens a socket (its connect is then refused), and a request whose attempt
# failed is retried on v1-a.
source "$(dirname "$0")/l7_lib.sh"

PORT=19216
LISTEN=127.77.0.1:19217
l7_nginx v1-a 127.77.11.2 "$PORT"
l7_productpage_config "$L7_TMP/config" "$PORT"

# run SPLIT: 40 requests under split SPLIT; sets $ejections and $tries (attempts at v1-b).
run() {
  {
    l7_virtual_service <<'YAML'
  - route: [{destination: {host: productpage, subset: v1}}]
YAML
    printf -- '---\napiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: productpage}\n'
    printf 'spec:\n  host: productpage\n  trafficPolicy:\n'
    printf '    outlierDetection: {consecutive5xxErrors: 0, splitExternalLocalOriginErrors: %s, consecutiveLocalOriginFailures: 2, maxEjectionPercent: 100, interval: 1s, baseEjectionTime: 60s}\n' "$1"
    printf '  subsets:\n  - {name: v1, labels: {version: v1}}\n'
  } >"$L7_TMP/config/routing.yaml"
  l7_proxy "$L7_TMP/config" "$LISTEN" "$PORT" --workers 1
  local codes
  codes=$(curl -s -o /dev/null -w '%{http_code}\n' -m 5 "http://$LISTEN/r[1-40]" | sort | uniq -c | awk '{print $2 "x" $1}' | xargs)
  l7_stop_proxy
  [[ $codes == "200x40" ]] || l7_fail "split $1: every request should be answered 200 by v1-a (retried past v1-b), got: $codes"
  ejections=$(awk '/^sluice_outlier_ejections_total/ && /productpage-v1-b/ {s += $NF} END {print s + 0}' "$L7_TMP/metrics.txt")
  tries=$(awk '/^sluice_upstream_connections_opened_total/ && /productpage-v1-b/ {s += $NF} END {print s + 0}' "$L7_TMP/metrics.txt")
  echo "split $1: v1-b ejected $ejections time(s), tried $tries time(s) over 40 requests"
}

run true
((ejections >= 1)) || l7_fail "split: v1-b's refused connects did not eject it"
((tries <= 4)) || l7_fail "split: v1-b was tried $tries times after 2 local failures should have ejected it"
run false
((ejections == 0)) || l7_fail "not split: v1-b was ejected ($ejections) with both 5xx detectors off"
((tries >= 8)) || l7_fail "not split: v1-b was tried only $tries times (about half of 40 expected)"
echo "PASS: split local-origin failures eject through their own limit; unsplit they do not"

#!/usr/bin/env bash
# --http2-max-concurrent-streams sets the SETTINGS_MAX_CONCURRENT_STREAMS the
# proxy advertises to HTTP/2 clients (docs/l7-proxy.md, "Limits"): nghttp
# reads 3 with `--http2-max-concurrent-streams 3` and 100 without. h2load
# opens 9 streams on one connection at once, before it has the proxy's
# SETTINGS (each request held 300 ms by the backend, so all 9 would be open
# together): under the limit of 3 the first 3 are served and the other 6
# refused (RST_STREAM REFUSED_STREAM: the client may retry them, nothing was
# processed), under the default 100 all 9 are served.
source "$(dirname "$0")/l7_lib.sh"
command -v nghttp >/dev/null && command -v h2load >/dev/null || l7_skip_or_fail "nghttp/h2load not installed (nghttp2-client)"

PORT=19214
LISTEN=127.77.0.1:19215
l7_test_backend v1-a 127.77.11.2 "$PORT"
l7_productpage_config "$L7_TMP/config" "$PORT"
sed -i '/productpage-v1-b/,/version: v1}/ s/version: v1}/version: v1-unused}/' "$L7_TMP/config/service.yaml"
{
  l7_virtual_service <<'YAML'
  - route: [{destination: {host: productpage, subset: v1}}]
YAML
  l7_subsets_rule v1
} >"$L7_TMP/config/routing.yaml"

# check LIMIT SERVED [proxy options]: the advertised limit, and SERVED of 9
# streams opened at once served, the others refused.
check() {
  local want=$1 served=$2
  shift 2
  l7_proxy "$L7_TMP/config" "$LISTEN" "$PORT" --workers 1 "$@"
  local advertised
  # the first MAX_CONCURRENT_STREAMS after "recv SETTINGS" (nghttp prints its own sent SETTINGS too)
  advertised=$(nghttp -nv "http://$LISTEN/" 2>&1 |
    awk '/recv SETTINGS frame/ {r = 1} /send SETTINGS frame/ {r = 0} r && match($0, /SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):[0-9]+/) {print substr($0, RSTART, RLENGTH); exit}')
  [[ $advertised == "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):$want" ]] ||
    l7_fail "the proxy advertised '$advertised', not $want"
  h2load -c1 -m9 -n9 "http://$LISTEN/echo?delay_ms=300" >"$L7_TMP/h2load.$want" 2>&1 || true
  local line
  line=$(grep -E '^requests:' "$L7_TMP/h2load.$want")
  echo "limit $want advertised; 9 streams at once: $line"
  [[ $line == *" $served succeeded, $((9 - served)) failed, $((9 - served)) errored"* ]] ||
    l7_fail "under limit $want, $served of 9 streams should be served and the rest refused: $line"
  [[ $(grep -E '^status codes:' "$L7_TMP/h2load.$want") == "status codes: $served 2xx, 0 3xx, 0 4xx, 0 5xx" ]] ||
    l7_fail "under limit $want: $(grep -E '^status codes:' "$L7_TMP/h2load.$want")"
  l7_stop_proxy
}

check 3 3 --http2-max-concurrent-streams 3
check 100 9
echo "PASS: --http2-max-concurrent-streams is advertised and enforced"

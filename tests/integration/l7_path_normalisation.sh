#!/usr/bin/env bash
# Path normalisation, trailers and HTTP/1.0 Host at the real proxy, checked
# at a recording backend. A route answers 403 for prefix /admin: with the
# default BASE normalisation /x/../admin and /%61dmin get that 403 and never
# reach the backend; with MERGE_SLASHES //admin does too. Paths that reach
# the backend arrive normalised; a raw byte over 0x7e or a fragment in the
# target is refused with 400. Chunked trailers that frame or route
# (Content-Length, Host) are dropped, others pass; an HTTP/1.0 request
# without Host goes upstream with the service's host.
source "$(dirname "$0")/l7_lib.sh"

PORT=28098
LISTEN=127.77.0.1:18098
l7_pybackend v1-a 127.77.11.2 "$PORT" --record "$L7_TMP/backend.jsonl"
l7_productpage_config "$L7_TMP/cfg" "$PORT"
sed -i '/productpage-v1-b/,/version: v1}/ s/version: v1}/version: v1-unused}/' "$L7_TMP/cfg/service.yaml"
{
  l7_virtual_service <<'YAML'
  - match: [{uri: {prefix: /admin}}]
    directResponse: {status: 403}
  - route:
    - destination: {host: productpage, subset: v1}
YAML
  l7_subsets_rule v1
} >"$L7_TMP/cfg/routing.yaml"

# send RAW_REQUEST: prints the response status; the request is sent as is
# (curl would resolve the dot segments itself).
send() {
  python3 - "$LISTEN" "$1" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=3)
s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
data = b""
try:
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
print(data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "none")
PY
}
get() { send "GET $1 HTTP/1.1\r\nHost: productpage\r\nConnection: close\r\n\r\n"; }
records() { [[ -f $L7_TMP/backend.jsonl ]] && wc -l <"$L7_TMP/backend.jsonl" || echo 0; }
last_record() { tail -n 1 "$L7_TMP/backend.jsonl"; }
field() { python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

expect_denied() {   # PATH MODE: 403 from the /admin route, nothing new at the backend
  local before status
  before=$(records)
  status=$(get "$1")
  [[ $status == 403 && $(records) == "$before" ]] ||
    l7_fail "$2: $1 answered $status, backend requests $before -> $(records) (want 403 from the /admin route)"
  echo "PASS: $2: $1 -> 403 from the /admin route, not forwarded"
}

expect_forwarded() {   # PATH NORMALISED MODE
  local status target
  status=$(get "$1")
  target=$(field "$(last_record)" 'r["target"]')
  [[ $status == 200 && $target == "$2" ]] || l7_fail "$3: $1 answered $status, backend saw '$target' (want 200, '$2')"
  echo "PASS: $3: $1 forwarded as $2"
}

l7_proxy "$L7_TMP/cfg" "$LISTEN" "$PORT" --workers 1
expect_denied "/x/../admin" BASE
expect_denied "/%61dmin/panel" BASE
expect_denied "/%2e%2e/admin" BASE
expect_denied "/x\\\\..\\\\admin" BASE
expect_forwarded "/x/../public/%7Euser?q=/../%61" "/public/~user?q=/../%61" BASE
expect_forwarded "//admin" "//admin" BASE   # slashes are only merged from MERGE_SLASHES on
# Raw bytes over 0x7e (an overlong UTF-8 '/', which a lenient backend may
# decode to '/') and a fragment: 400 at the proxy, nothing forwarded.
for target in "/public/..\\xc0\\xaf..\\xc0\\xafadmin" "/public#/../../admin" "/?q=\\xe4\\xbd\\xa0"; do
  before=$(records)
  status=$(get "$target")
  [[ $status == 400 && $(records) == "$before" ]] ||
    l7_fail "BASE: $target answered $status, backend requests $before -> $(records) (want 400, not forwarded)"
  echo "PASS: BASE: $target -> 400, not forwarded"
done
status=$(get "/a%zz")
[[ $status == 400 ]] || l7_fail "BASE: a broken escape answered $status (want 400)"
echo "PASS: BASE: /a%zz -> 400"

# Trailers: framing and routing names dropped, the others kept.
send "POST /upload HTTP/1.1\r\nHost: productpage\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 99\r\nHost: evil\r\nx-checksum: 5d41\r\n\r\n" >/dev/null
trailers=$(field "$(last_record)" '[n.lower() for n, v in r["trailers"]]')
body=$(field "$(last_record)" 'r["body"]')
[[ $trailers == "['x-checksum']" && $body == hello ]] || l7_fail "trailers at the backend: $trailers, body '$body'"
echo "PASS: trailers: content-length and host dropped, x-checksum kept"

# HTTP/1.0 without Host: upstream as HTTP/1.1 with the service's host.
status=$(send "GET /old HTTP/1.0\r\n\r\n")
hosts=$(field "$(last_record)" '[v for n, v in r["headers"] if n.lower() == "host"]')
[[ $status == 200 && $hosts == "['productpage']" ]] || l7_fail "HTTP/1.0 without Host: $status, hosts upstream $hosts"
echo "PASS: HTTP/1.0 without Host: upstream Host productpage"
l7_stop_proxy

l7_proxy "$L7_TMP/cfg" "$LISTEN" "$PORT" --workers 1 --path-normalization MERGE_SLASHES
expect_denied "//admin" MERGE_SLASHES
expect_denied "/x//..//admin" MERGE_SLASHES
expect_forwarded "/x%2F..%2Fadmin" "/x%2F..%2Fadmin" MERGE_SLASHES
l7_stop_proxy

l7_proxy "$L7_TMP/cfg" "$LISTEN" "$PORT" --workers 1 --path-normalization DECODE_AND_MERGE_SLASHES
expect_denied "/x%2F..%2Fadmin" DECODE_AND_MERGE_SLASHES
l7_stop_proxy

l7_proxy "$L7_TMP/cfg" "$LISTEN" "$PORT" --workers 1 --path-normalization NONE
expect_forwarded "/x/../admin" "/x/../admin" NONE
l7_stop_proxy
echo "PASS: l7_path_normalisation"

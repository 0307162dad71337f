#!/usr/bin/env bash
# sluiced --access-log: one JSON line per L7 request with Istio's fields, the
# values matching what the client sent and received, and SIGUSR1 reopening
# the file after rotation (mv + signal, as logrotate does).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

agent_setup accesslog
agent_write_routing "name: primary" v1 100 0
log="$AGENT_WORK/access.log"
agent_start --access-log "$log" --access-log-format json
client=$(topo_ns client)
url=http://10.96.0.10:9080/

# 20 GETs, each with its own request id, recording the bytes curl received.
: >"$AGENT_WORK/sizes"
for i in $(seq 20); do
  topo_exec "$client" curl -s -o /dev/null -m 5 -A "sluice-test/1" -H "x-request-id: r-$i" \
    -H "x-forwarded-for: 192.0.2.$i" -w "r-$i %{http_code} %{size_download}\n" "$url" >>"$AGENT_WORK/sizes"
done
# A POST with a 1000-byte body.
head -c 1000 /dev/zero | tr '\0' 'a' >"$AGENT_WORK/body"
topo_exec "$client" curl -s -o /dev/null -m 5 -H "x-request-id: post-1" --data-binary "@$AGENT_WORK/body" \
  -w "post-1 %{http_code} %{size_download}\n" "$url" >>"$AGENT_WORK/sizes"

lines_with() { grep -c "$1" "$2" 2>/dev/null || true; }
wait_lines() {   # wait_lines PATTERN FILE N: workers flush every 10 ms; allow 2 s
  local i
  for i in $(seq 100); do [[ $(lines_with "$1" "$2") -ge $3 ]] && return 0; sleep 0.02; done
  return 1
}
agent_check "21 requests logged within 2 s" wait_lines '"request_id":"\(r-\|post-\)' "$log" 21

check=$(python3 - "$log" "$AGENT_WORK/sizes" <<'PY'
import json, sys
entries = {}
for line in open(sys.argv[1]):
    j = json.loads(line)            # every line is one JSON object
    entries.setdefault(j.get("request_id"), []).append(j)
problems = []
backends = {"10.200.11.2:9080", "10.200.12.2:9080"}   # v1 at weight 100
for want in open(sys.argv[2]):
    rid, code, size = want.split()
    got = entries.get(rid, [])
    if len(got) != 1:
        problems.append("%s logged %d times" % (rid, len(got))); continue
    j = got[0]
    expect = {
        "method": "POST" if rid.startswith("post") else "GET", "path": "/", "protocol": "HTTP/1.1",
        "response_code": int(code), "response_flags": "-", "response_code_details": "via_upstream",
        "bytes_sent": int(size), "bytes_received": 1000 if rid.startswith("post") else 0,
        "authority": "10.96.0.10:9080", "upstream_cluster": "outbound|9080|v1|productpage",
        "downstream_local_address": "10.96.0.10:9080", "route_name": "primary",
    }
    if not rid.startswith("post"):
        expect["user_agent"] = "sluice-test/1"
        expect["x_forwarded_for"] = "192.0.2." + rid[2:]
    for k, v in expect.items():
        if j.get(k) != v: problems.append("%s: %s is %r, expected %r" % (rid, k, j.get(k), v))
    if j.get("upstream_host") not in backends: problems.append("%s: upstream_host %r" % (rid, j.get("upstream_host")))
    if not str(j.get("downstream_remote_address", "")).startswith("10.200.1.2:"):
        problems.append("%s: downstream_remote_address %r" % (rid, j.get("downstream_remote_address")))
    if not isinstance(j.get("duration"), int) or not isinstance(j.get("upstream_service_time"), int) \
            or j["upstream_service_time"] > j["duration"]:
        problems.append("%s: duration %r, upstream_service_time %r" % (rid, j.get("duration"), j.get("upstream_service_time")))
print("ok" if not problems else "\n".join(problems))
PY
)
agent_check "each line carries what the client sent and received ($check)" test "$check" = ok

# Rotation: the file is moved away, SIGUSR1 reopens the path.
mv "$log" "$log.1"
kill -USR1 "$AGENT_PID"
for i in $(seq 100); do grep -q "SIGUSR1: reopened" "$AGENT_WORK/sluiced.log" && break; sleep 0.02; done
for i in $(seq 5); do
  topo_exec "$client" curl -s -o /dev/null -m 5 -H "x-request-id: after-$i" "$url"
done
agent_check "after SIGUSR1, new requests go to the reopened path" wait_lines '"request_id":"after-' "$log" 5
agent_check "and none to the rotated file" test "$(lines_with '"request_id":"after-' "$log.1")" -eq 0
agent_finish

#!/usr/bin/env bash
# What a real sluiced does with hostile or broken entries in its config
# directory: a symlink loop, a FIFO named *.yaml, an alias bomb and an
# oversized file are each refused with the place named in `status`, the
# agent stays up and keeps serving the last good snapshot (traffic included),
# and its memory stays small. A file the loader does not read (notes.txt)
# does not reload, and a reload that leaves productpage's routes alone keeps
# its runtime weight override.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

agent_setup cfginput
agent_write_routing "name: primary" v1 100 0
agent_start
dir="$AGENT_WORK/config"
vip=10.96.0.10

version() { agent_json "$(agent_status)" 'j["version"]'; }
# wait_refused NEEDLE: until status shows a refused change whose messages hold NEEDLE (5 s)
wait_refused() {
  local i
  for i in $(seq 50); do
    agent_json "$(agent_status)" "'\n'.join((j['last_error'] or {}).get('messages', []))" | grep -qF -- "$1" && return 0
    sleep 0.1
  done
  agent_json "$(agent_status)" 'j["last_error"]'
  return 1
}
serving_ok() {   # sluiced alive, /ready 200, and L7 traffic still follows the good snapshot (all v1)
  kill -0 "$AGENT_PID" 2>/dev/null || { echo "  sluiced died"; return 1; }
  [[ "$(agent_curl -o /dev/null -w '%{http_code}' "http://$AGENT_ADMIN/ready")" == 200 ]] || return 1
  local out
  out=$(agent_loadgen http --url "http://$vip:9080/" --count 20 --concurrency 2 --timeout-s 20)
  agent_share_ok "$out" 100
}
v0=$(version)

ln -s loop "$dir/loop"
agent_check "symlink loop: refused naming it" wait_refused "$dir/loop: error: symlink loop"
agent_check "symlink loop: still serving version $v0" test "$(version)" = "$v0"
agent_check "symlink loop: sluiced up and serving" serving_ok
rm "$dir/loop"

mkfifo "$dir/pipe.yaml"
agent_check "FIFO named pipe.yaml: refused, not waited on" wait_refused "pipe.yaml: error: not a regular file (a FIFO)"
rm "$dir/pipe.yaml"

# A valid VirtualService of 6 KB whose aliases expand to 100 routes x 100
# matches x 100 header conditions: a million header matches that main
# decoded and accepted (RSS grows with the count).
python3 - "$dir/.bomb.tmp" <<'PY'
import sys
n = 100
h = "{" + ", ".join(f"x-h{i}: {{exact: v{i}}}" for i in range(n)) + "}"
m = "[" + ", ".join(("{headers: &h " + h + "}") if i == 0 else "{headers: *h}" for i in range(n)) + "]"
lines = ["apiVersion: networking.istio.io/v1", "kind: VirtualService", "metadata: {name: bomb, namespace: default}",
         "spec:", "  hosts: [productpage]", "  http:"]
for r in range(n):
    lines += [f"  - match: {('&m ' + m) if r == 0 else '*m'}", "    route: [{destination: {host: productpage}}]"]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
mv "$dir/.bomb.tmp" "$dir/bomb.yaml"
agent_check "alias bomb: refused at bomb.yaml:LINE:COL before expanding it" \
  wait_refused "YAML aliases expand this document past 1000000 nodes"
agent_check "alias bomb: the message names bomb.yaml with a line and column" \
  python3 -c "import json,re,sys; j=json.loads(sys.argv[1]); sys.exit(0 if any(re.search(r'/bomb\.yaml:[1-9][0-9]*:[1-9][0-9]*: error: YAML aliases', m) for m in j['last_error']['messages']) else 1)" "$(agent_status)"
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$AGENT_PID/status")
agent_check "alias bomb: sluiced RSS stays under 300 MB (${rss_kb} kB)" test "${rss_kb:-999999999}" -lt 300000
agent_check "alias bomb: sluiced up and serving" serving_ok
rm "$dir/bomb.yaml"

head -c $((5 << 20)) /dev/zero | tr '\0' '#' >"$dir/.big.tmp"
mv "$dir/.big.tmp" "$dir/big.yaml"
agent_check "5 MiB file: refused naming it and the limit" \
  wait_refused "big.yaml: error: file is 5242880 bytes, larger than the 4 MiB limit"
rm "$dir/big.yaml"
sleep 0.3
agent_check "after the bad entries are gone: status clean again" \
  test "$(agent_json "$(agent_status)" 'j["last_error"]')" = None

# Runtime override vs unrelated changes.
agent_ctl weights productpage v1=0 v2=100 >/dev/null
v1=$(version)
echo "notes" >"$dir/notes.txt"
sleep 0.5
agent_check "notes.txt written: no reload (version $v1 -> $(version)), override kept" \
  test "$(version)" = "$v1" -a "$(agent_json "$(agent_status)" 'j["overrides"].get("productpage")')" = "{'v1': 0, 'v2': 100}"
cat >"$dir/.other.tmp" <<YAML
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  addresses: [10.96.0.11]
  ports:
  - {number: 9090, name: tcp, protocol: TCP}
  resolution: STATIC
  endpoints:
  - {address: $(topo_addr backend 1)}
YAML
mv "$dir/.other.tmp" "$dir/other.yaml"
sleep 0.5
agent_check "other.yaml added (not productpage's routes): reloaded ($v1 -> $(version)), override kept" \
  test "$(version)" -gt "$v1" -a "$(agent_json "$(agent_status)" 'j["overrides"].get("productpage")')" = "{'v1': 0, 'v2': 100}"
out=$(agent_loadgen http --url "http://$vip:9080/" --count 20 --concurrency 2 --timeout-s 20)
agent_check "traffic still follows the override (all v2)" agent_share_ok "$out" 0
agent_write_routing "name: primary" v1 50 50
sleep 0.5
agent_check "routing.yaml's weights changed: the files win, override dropped" \
  test "$(agent_json "$(agent_status)" 'j["overrides"]')" = "{}"
agent_check "log says why the override went" grep -q "weight override on productpage dropped" "$AGENT_WORK/sluiced.log"
agent_finish

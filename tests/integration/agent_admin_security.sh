#!/usr/bin/env bash
# The admin API's exposure against a real sluiced: the TCP listener serves
# GET only (POST /weights there is 403; with --admin-token-file it needs the
# bearer token), a Host that is not an IP or localhost is 403 (DNS
# rebinding), the Unix socket is 0600 in a 0700 directory and takes
# `sluicectl weights`, a non-root user cannot use it, and 64 slow-loris
# connections do not keep /ready from answering within 1 s (the request
# deadline, 5 s, is absolute: trickling clients are cut off by 7 s).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

agent_setup adminsec
agent_write_routing "name: primary" v1 70 30
token_file="$AGENT_WORK/token"
(umask 077 && printf 'test-token-%s-0123456789\n' "$$" >"$token_file")
token=$(tr -d '\n' <"$token_file")
agent_start
node_exec() { nsenter --net="/run/netns/$(topo_ns node)" "$@"; }
code() { agent_curl -o /dev/null -w '%{http_code}' "$@"; }

body='{"host":"productpage","weights":{"v1":10,"v2":90}}'
agent_check "POST /weights on TCP without a token: 403" \
  test "$(code -X POST -d "$body" "http://$AGENT_ADMIN/weights")" = 403
agent_check "GET /status on TCP: 200" test "$(code "http://$AGENT_ADMIN/status")" = 200
agent_check "Host: rebinding.example on TCP: 403" \
  test "$(code -H 'Host: rebinding.example:15000' "http://$AGENT_ADMIN/status")" = 403
agent_check "Host: localhost:15000: 200" test "$(code -H 'Host: localhost:15000' "http://$AGENT_ADMIN/ready")" = 200
agent_check "weights unchanged by the refused POST" \
  test "$(agent_json "$(agent_status)" 'j["overrides"]')" = "{}"

mode() { stat -c %a "$1"; }
agent_check "admin socket is mode 600 ($(mode "$AGENT_SOCKET")), its directory 700 ($(mode "$AGENT_WORK"))" \
  test "$(mode "$AGENT_SOCKET")" = 600 -a "$(mode "$AGENT_WORK")" = 700
out=$(agent_ctl weights productpage v1=20 v2=80 2>&1)
agent_check "sluicectl weights over the socket: applied ($out)" \
  test "$(agent_json "$(agent_status)" 'j["overrides"].get("productpage")')" = "{'v1': 20, 'v2': 80}"
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
  # The socket's directory is 0700: open it up so that only the socket's
  # own mode and the peer check stand between nobody and POST /weights.
  chmod 711 "$AGENT_WORK"
  out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups curl -s -m 5 --unix-socket "$AGENT_SOCKET" \
    -o /dev/null -w '%{http_code}' -X POST -d "$body" http://localhost/weights 2>&1)
  chmod 700 "$AGENT_WORK"
  agent_check "user nobody cannot POST on the socket (curl: $out)" test "$out" = 000
fi

# Slow loris: 64 connections each sending a request head one byte a second.
node_exec python3 - "$AGENT_ADMIN" "$AGENT_WORK/loris.connected" >"$AGENT_WORK/loris.json" <<'PY' &
import json, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
conns = []
start = time.monotonic()
for _ in range(64):
    s = socket.create_connection((host, int(port)), timeout=2)
    s.sendall(b"G")
    conns.append(s)
open(sys.argv[2], "w").write("64\n")
closed_at = {}
while time.monotonic() - start < 9 and len(closed_at) < len(conns):
    time.sleep(1)
    for i, s in enumerate(conns):
        if i in closed_at:
            continue
        try:
            s.sendall(b"E")
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed_at[i] = time.monotonic() - start
            except BlockingIOError:
                pass
            s.setblocking(True)
        except OSError:
            closed_at[i] = time.monotonic() - start
print(json.dumps({"closed": len(closed_at), "latest": max(closed_at.values(), default=None)}))
PY
loris=$!
for _ in $(seq 100); do [[ -f "$AGENT_WORK/loris.connected" ]] && break; sleep 0.1; done
agent_check "64 slow-loris connections open" test -f "$AGENT_WORK/loris.connected"
probe=$(agent_curl -o /dev/null -w '%{http_code} %{time_total}' -m 3 "http://$AGENT_ADMIN/ready")
agent_check "/ready answers within 1 s while 64 slow-loris connections are open ($probe)" \
  python3 -c "import sys; c, t = sys.argv[1].split(); sys.exit(0 if c == '200' and float(t) < 1.0 else 1)" "$probe"
probe=$(node_exec curl -s -o /dev/null -w '%{http_code}' -m 3 --unix-socket "$AGENT_SOCKET" http://localhost/ready)
agent_check "/ready on the socket meanwhile: $probe" test "$probe" = 200
wait "$loris"
res=$(cat "$AGENT_WORK/loris.json")
agent_check "every trickling connection was closed by the 5 s request deadline, within 7 s ($res)" \
  python3 -c "import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if j['closed'] == 64 and j['latest'] <= 7 else 1)" "$res"

# With a token file the TCP listener takes POST with the token, and only so.
agent_stop TERM
agent_start --admin-token-file "$token_file"
agent_check "POST /weights on TCP with a wrong token: 401" \
  test "$(code -H "Authorization: Bearer wrong-token-0123456789" -X POST -d "$body" "http://$AGENT_ADMIN/weights")" = 401
challenge=$(agent_curl -s -o /dev/null -D - -X POST -d "$body" "http://$AGENT_ADMIN/weights" | tr -d '\r' |
  sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: //p')
agent_check "the 401 names the Bearer scheme (WWW-Authenticate: $challenge)" test "${challenge%% *}" = Bearer
agent_check "POST /weights on TCP with the token: 200" \
  test "$(code -H "Authorization: Bearer $token" -X POST -d "$body" "http://$AGENT_ADMIN/weights")" = 200
out=$(node_exec "$SLUICECTL" weights productpage v1=30 v2=70 --admin "$AGENT_ADMIN" --admin-token-file "$token_file" 2>&1)
agent_check "sluicectl weights --admin-token-file over TCP ($out)" \
  test "$(agent_json "$(agent_status)" 'j["overrides"].get("productpage")')" = "{'v1': 30, 'v2': 70}"
agent_finish

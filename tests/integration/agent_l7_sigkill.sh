#!/usr/bin/env bash
# sluiced --supervise, its child SIGKILLed while wrk drives the L7 VIP: the
# supervisor keeps the L7 listening sockets open, so connections opened
# while no sluiced runs are taken into the kernel's accept backlog (the
# sk_lookup map still holds the socket) instead of being refused, and the
# restarted sluiced serves them.
#
# Clients: wrk (16 keep-alive connections; it reconnects each one the kill
# resets) and sluice-loadgen opening a new connection per request, 8 at a
# time, from just before the kill until after the restart. Asserts: no
# connection refused (loadgen's ECONNREFUSED count, wrk's connect errors);
# wrk lost at most one request per connection (the one in flight at the
# kill: read + write errors <= 16; wrk 4.1 reports a refused reconnect as a
# write error, thousands of them without a keeper); a new sluiced took over
# the inherited sockets and the load went on through it. The requests in
# flight at the kill die with the process that held them: resets are
# printed, not asserted away.
#
# SLUICE_L7_KEEPER=none runs the same load without --supervise, the test
# restarting sluiced itself: what clients saw before the supervisor existed
# (refused connections for the whole gap), so this test fails that way.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"
topo_require_cmd wrk pgrep
keeper=${SLUICE_L7_KEEPER:-supervise}

agent_setup l7kill
agent_write_routing "name: primary" v1 50 50
if [[ $keeper == supervise ]]; then agent_start --supervise; else agent_start; fi
vip=10.96.0.10
connections=16

vip_200s() {   # vip_200s N: how many of N new requests to the L7 VIP get 200
  local i ok=0
  for ((i = 0; i < $1; i++)); do
    [[ $(topo_exec "$(topo_ns client)" curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$vip:9080/") == 200 ]] &&
      ok=$((ok + 1))
  done
  echo "$ok"
}
agent_child() {   # the sluiced doing the work: the supervisor's child, or sluiced itself
  if [[ $keeper == supervise ]]; then pgrep -P "$AGENT_PID" | head -1; else echo "$AGENT_PID"; fi
}
old=$(agent_child)
agent_check "sluiced runs (pid ${old:-none})" test -n "$old"
agent_check "VIP served before the kill" test "$(vip_200s 1)" -eq 1

# 10 s of keep-alive load; the kill lands 3 s in. wrk reconnects each
# connection the kill resets: those reconnects are the new connections
# that arrive while no sluiced runs. --timeout 10s: a request waiting in
# the backlog across the restart is slow, not lost.
topo_exec "$(topo_ns client)" timeout 30 wrk -t 2 -c "$connections" -d 10s --timeout 10s "http://$vip:9080/" \
  >"$AGENT_WORK/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 3
# New connections across the kill: bounded by count and time (20 s).
agent_loadgen http --url "http://$vip:9080/" --count 4000 --concurrency 8 --conn-timeout-ms 10000 --timeout-s 20 \
  >"$AGENT_WORK/fresh.json" 2>&1 &
fresh_pid=$!
sleep 0.2
log_lines=$(wc -l <"$AGENT_WORK/sluiced.log")
kill -KILL "$old"
killed_at=$(date +%s.%N)
if [[ $keeper == supervise ]]; then
  new=""
  for _ in $(seq 100); do   # bounded: 10 s
    new=$(agent_child)
    [[ -n "$new" && "$new" != "$old" ]] && break
    sleep 0.1
  done
  agent_check "the supervisor started a new sluiced (pid ${new:-none}, was $old)" test -n "$new" -a "$new" != "$old"
else
  wait "$AGENT_PID" 2>/dev/null
  agent_start
fi
for _ in $(seq 150); do   # bounded: 15 s
  agent_curl -sf "http://$AGENT_ADMIN/ready" >/dev/null && break
  sleep 0.1
done
ready_at=$(date +%s.%N)
echo "sluiced ready again $(python3 -c "print('%.2f' % ($ready_at - $killed_at))") s after the SIGKILL"
wait "$wrk_pid"
wait "$fresh_pid"
cat "$AGENT_WORK/wrk.txt"
fresh=$(cat "$AGENT_WORK/fresh.json")
echo "new connections: $(agent_json "$fresh" '"%d opened, %d answered %s, errors %s %s" % (j["connections_opened"],
  sum(j["status"].values()), j["status"], j["errors"], j["other_errnos"])')"

errors_of() {   # errors_of KIND: wrk's "Socket errors" count of KIND (0 when wrk printed no such line)
  sed -n "s/.*Socket errors:.*$1 \([0-9]*\).*/\1/p" "$AGENT_WORK/wrk.txt" | grep . || echo 0
}
requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$AGENT_WORK/wrk.txt")
non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$AGENT_WORK/wrk.txt" | grep . || echo 0)
echo "clients saw: $requests requests answered, connect errors $(errors_of connect), read $(errors_of read)," \
  "write $(errors_of write), timeout $(errors_of timeout), non-2xx $non2xx"
agent_check "wrk ran" test -n "$requests"
agent_check "no new connection refused while sluiced restarted (loadgen: $(agent_json "$fresh" 'j["errors"]["refused"]') refused)" \
  test "$(agent_json "$fresh" 'j["errors"]["refused"]')" -eq 0
agent_check "wrk: no connect error ($(errors_of connect))" test "$(errors_of connect)" -eq 0
# Each wrk connection loses the request in flight when the child dies. A
# connection wrk reopens at that moment can also be taken by the dying
# child's pending io_uring accept and closed with it (the loadgen above sees
# the same handful), so each connection may fail twice; main without the
# supervisor failed ~19,000 times here.
agent_check "wrk lost at most two requests on each of its $connections connections" \
  test "$(($(errors_of read) + $(errors_of write)))" -le "$((2 * connections))"
agent_check "the new sluiced took over the inherited L7 listeners" \
  test "$(tail -n +"$((log_lines + 1))" "$AGENT_WORK/sluiced.log" | grep -c 'taking over the inherited socket')" -ge 1
# The restarted sluiced's own counter: wrk's requests after the kill went through it.
served=$(agent_curl "http://$AGENT_ADMIN/stats/prometheus" |
  awk '$1 ~ /^istio_requests_total\{/ && $1 ~ /response_code="200"/ {n += $NF} END {print n + 0}')
echo "the restarted sluiced answered $served requests"
agent_check "traffic resumed through the restarted sluiced" test "$served" -gt 0
ok=$(vip_200s 20)
agent_check "20 new requests after the restart: $ok answered 200" test "$ok" -eq 20

# A SIGTERM to the child alone is a graceful restart: it drains, the
# supervisor starts the next one.
if [[ $keeper == supervise ]]; then
  old=$(agent_child)
  kill -TERM "$old"
  new=""
  for _ in $(seq 150); do   # bounded: 15 s (the drain included)
    new=$(agent_child)
    [[ -n "$new" && "$new" != "$old" ]] && agent_curl -sf "http://$AGENT_ADMIN/ready" >/dev/null && break
    sleep 0.1
  done
  agent_check "SIGTERM to the child: a new sluiced (pid ${new:-none}, was $old) serves" \
    test -n "$new" -a "$new" != "$old" -a "$(vip_200s 20)" -eq 20
fi

# The systemd path: sockets passed as sluiced.socket would pass them
# (systemd-socket-activate: no SO_REUSEPORT, so the second worker accepts on
# the passed socket too). Only the hand-over is checked here; keeping the
# sockets across a crash is systemd's part.
if [[ $keeper == supervise ]] && command -v systemd-socket-activate >/dev/null; then
  agent_stop TERM
  log_lines=$(wc -l <"$AGENT_WORK/sluiced.log")
  # systemd-socket-activate starts the program at the first connection
  # (systemd starts sluiced.service at boot): the wrapper makes one.
  cat >"$AGENT_WORK/activate.sh" <<SH
#!/bin/bash
(sleep 0.3; exec 3<>/dev/tcp/127.0.0.1/15001) 2>/dev/null &
exec systemd-socket-activate -l 127.0.0.1:15001 -l '[::1]:15001' "$SLUICED" "\$@"
SH
  chmod +x "$AGENT_WORK/activate.sh"
  SLUICED="$AGENT_WORK/activate.sh" agent_start
  agent_check "socket activation: sluiced took over both passed listeners" \
    test "$(tail -n +"$((log_lines + 1))" "$AGENT_WORK/sluiced.log" | grep -c 'taking over the inherited socket')" -eq 2
  ok=$(vip_200s 20)
  agent_check "socket activation: 20 requests to the VIP, $ok answered 200" test "$ok" -eq 20
fi
agent_finish

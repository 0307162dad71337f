#!/usr/bin/env bash
# sluice-test-backend and sluice-loadgen against each other on loopback (no
# root needed): every mode's tally must add up to what was sent, counts must
# match the backend's own /__stats, errors must be classified, and SIGTERM must
# end the backend cleanly.
set -uo pipefail
backend_bin=${SLUICE_TEST_BACKEND:?set SLUICE_TEST_BACKEND}
loadgen_bin=${SLUICE_LOADGEN:?set SLUICE_LOADGEN}
command -v python3 >/dev/null || { echo "SKIP: missing python3"; [[ "${CI:-}" == true ]] && exit 1; exit 77; }

# Ports derived from the pid so parallel runs do not collide, below the
# ephemeral range (32768 and up), where an outgoing connection of another
# process could hold one; if a listener still cannot bind, another base is
# tried, and the backends' own errors are shown if none works.
err_dir=$(mktemp -d /tmp/slc-tools-loopback.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$err_dir"; }
trap cleanup EXIT

started=false
for attempt in 0 1 2 3 4; do
  base=$((20000 + (($$ + attempt * 397) % 1200) * 10))
  "$backend_bin" --name alpha --http "$base" --tcp $((base + 1)) --udp $((base + 2)) --bind 127.0.0.1,::1 \
    2>"$err_dir/alpha.$attempt" &
  alpha=$!
  "$backend_bin" --name slow --http $((base + 3)) --delay-ms 200 --bind 127.0.0.1 2>"$err_dir/slow.$attempt" &
  slow=$!
  pids=("$alpha" "$slow")
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$base") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$((base + 3))") 2>/dev/null &&
      kill -0 "$alpha" "$slow" 2>/dev/null && { started=true; break; }
    kill -0 "$alpha" "$slow" 2>/dev/null || break   # one exited: a port was taken
    sleep 0.05
  done
  $started && break
  kill -TERM "$alpha" "$slow" 2>/dev/null
  wait "$alpha" "$slow" 2>/dev/null
done
if ! $started; then
  echo "FAIL: the backends did not start on any of 5 port bases:"
  cat "$err_dir"/* >&2
  exit 1
fi

failures=0
# expect NAME JSON PYTHON_CONDITION (j is the parsed JSON)
expect() {
  if python3 -c "import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if ($3) else 1)" "$2"; then
    echo "PASS: $1"
  else
    echo "FAIL: $1: $3 does not hold for $2"
    failures=$((failures + 1))
  fi
}

out=$("$loadgen_bin" tcp --connect "127.0.0.1:$((base + 1))" --count 2000 --concurrency 100 --timeout-s 20)
expect "tcp: 2000 greetings from alpha" "$out" 'j["backends"] == {"alpha": 2000} and j["total"] == 2000'

# 2,000 connections held open at once for 300 ms: the backend must take
# thousands. Both tools raise their soft fd limit to the hard one; each side
# needs ~2,000 descriptors.
if (($(ulimit -Hn) >= 2100)); then
  out=$("$loadgen_bin" tcp --connect "127.0.0.1:$((base + 1))" --count 4000 --concurrency 2000 --hold-ms 300 --timeout-s 30)
  expect "tcp: 2000 concurrent held connections" "$out" 'j["backends"] == {"alpha": 4000} and j["total"] == 4000'
else
  echo "FAIL: hard open-file limit $(ulimit -Hn) is below the 2,100 the concurrency check needs"
  failures=$((failures + 1))
fi

out=$("$loadgen_bin" tcp --connect "[::1]:$((base + 1))" --count 200 --concurrency 20 --hold-ms 10 --timeout-s 20)
expect "tcp over IPv6 with --hold-ms" "$out" 'j["backends"] == {"alpha": 200}'

out=$("$loadgen_bin" udp --connect "127.0.0.1:$((base + 2))" --count 500 --concurrency 50 --timeout-s 20)
expect "udp: 500 replies" "$out" 'j["backends"] == {"alpha": 500}'

out=$("$loadgen_bin" http --url "http://127.0.0.1:$base/x" --count 3000 --concurrency 30 --keepalive --timeout-s 20)
expect "http keep-alive: 3000 x 200 over 30 connections" "$out" \
  'j["backends"] == {"alpha": 3000} and j["status"] == {"200": 3000} and j["connections_opened"] == 30'

out=$("$loadgen_bin" http --url "http://[::1]:$base/?status=503" --count 100 --concurrency 10 --timeout-s 20)
expect "http ?status=503 is tallied by status" "$out" 'j["status"] == {"503": 100}'

stats=$(curl -s "http://127.0.0.1:$base/__stats")
expect "backend counted every request it answered" "$stats" 'j["requests"] == 3100 and j["udp_datagrams"] == 500'

out=$("$loadgen_bin" http --url "http://127.0.0.1:$((base + 3))/" --count 20 --concurrency 5 --conn-timeout-ms 50 --timeout-s 20)
expect "a slower backend than the request timeout gives timeouts" "$out" 'j["errors"]["timeout"] == 20 and j["total"] == 20'

out=$("$loadgen_bin" tcp --connect "127.0.0.1:$((base + 9))" --count 10 --concurrency 5 --timeout-s 5)
expect "nothing listening is counted as refused" "$out" 'j["errors"]["refused"] == 10'

out=$("$loadgen_bin" hold --connect "127.0.0.1:$((base + 1))" --connections 5 --duration-s 1 --interval-ms 100 --timeout-s 5)
expect "hold: 5 steady connections, echoes, no resets" "$out" \
  'j["summary"]["resets"] == 0 and j["summary"]["changed_backend"] == 0 and all(c["echoes"] >= 5 for c in j["connections"])'

kill -TERM "$alpha"
wait "$alpha"
rc=$?
if [[ $rc -eq 0 ]]; then echo "PASS: SIGTERM exits 0"; else echo "FAIL: SIGTERM exit status $rc"; failures=$((failures + 1)); fi

((failures == 0)) || exit 1

#!/usr/bin/env bash
# Canary shifts with nothing dropped: 100 weight changes through the files and
# 100 through `sluicectl weights`, with 50 invalid configs mixed in, while wrk
# (L7, keep-alive) and a TCP connection churner (L4) run the whole time.
#  - every change is applied to both planes: the split observed right after
#    it follows the new weights (tolerance in agent_share_ok);
#  - every invalid config is refused with its file:line:col, and the serving
#    version does not move;
#  - wrk sees no socket error and no non-2xx response; the churner sees no
#    reset, refused or timed-out connection.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"
topo_require_cmd wrk

agent_setup canary
agent_write_routing "name: primary" v1 100 0
agent_start
client=$(topo_ns client)
vip=10.96.0.10

# Background load for the whole run (bounded: wrk by -d, the churner by a stop
# file and a deadline; each churned connection is held 20 ms, at most ~100/s).
# `ip netns exec` execs wrk, so $! is wrk itself (a shell function would put
# a subshell in between, and SIGINT would not reach wrk).
# Paced (a 2 ms pause per connection between requests, at most ~2,000
# requests/s) so that the load is steady without taking both cores from the
# agent and the checks.
echo 'function delay() return 2 end' >"$AGENT_WORK/pace.lua"
ip netns exec "$client" wrk -t1 -c4 -d900s --timeout 5s -s "$AGENT_WORK/pace.lua" "http://$vip:9080/" >"$AGENT_WORK/wrk.txt" 2>&1 &
wrk_pid=$!
(
  deadline=$((SECONDS + 900))
  while [[ ! -f "$AGENT_WORK/stop" ]] && ((SECONDS < deadline)); do
    agent_loadgen tcp --connect "$vip:9081" --count 100 --concurrency 2 --hold-ms 20 --timeout-s 30 >>"$AGENT_WORK/churn.jsonl"
  done
) &
churn_pid=$!

weights=("100 0" "99 1" "70 30" "50 50" "0 100" "30 70" "90 10" "20 80")
# Invalid variants: LINE7 SUBSET1 W1 W2 and the location the refusal must name.
invalid=("name: primary|v3|70|30|routing.yaml:9:48: error: unknown subset 'v3'"
         "name: primary|v1|-5|30|routing.yaml:10:15: error: "
         "timeout: 7parsecs|v1|70|30|routing.yaml:7:14: error: "
         "name: primary|v1|0|0|routing.yaml:7:5: error: "
         "name: primary|v1|[70|30|routing.yaml:11:18: error: YAML syntax error")

# Cheap reads of /status (pretty-printed JSON) for polling and checks: no
# python start per read, which costs up to a second on a busy 2-core runner.
version_of() { sed -n 's/^  "version": \([0-9]*\).*/\1/p' <<<"$1"; }
messages_of() { sed -n '/^  "last_error": {/,/^  }/ s/^      "\(.*\)",\{0,1\}$/\1/p' <<<"$1"; }   # last_error.messages, one a line
version() { version_of "$(agent_status)"; }
refused() { agent_status | sed -n 's/^ *"refused": \([0-9]*\).*/\1/p'; }
version_above() { [[ $(version) -gt $1 ]]; }
refused_above() { [[ $(refused) -gt $1 ]]; }

wait_until() {   # wait_until COMMAND...: polls for up to 5 s
  local i
  for i in $(seq 250); do "$@" && return 0; sleep 0.02; done
  return 1
}

check_split() {   # check_split WHAT W1 W2: 200 new connections (L4) and 200 requests (L7), both planes at once
  local w1=$2 w2=$3 pct l4 l7
  pct=$((100 * w1 / (w1 + w2)))
  agent_loadgen tcp --connect "$vip:9081" --count 200 --concurrency 20 --timeout-s 30 >"$AGENT_WORK/l4.json" &
  agent_loadgen http --url "http://$vip:9080/" --count 200 --concurrency 4 --keepalive --timeout-s 30 >"$AGENT_WORK/l7.json"
  wait $!
  l4=$(<"$AGENT_WORK/l4.json") l7=$(<"$AGENT_WORK/l7.json")
  agent_share_ok "$l4" "$pct" || { echo "FAIL: $1: L4 split does not follow $w1/$w2"; agent_failures=$((agent_failures + 1)); }
  agent_share_ok "$l7" "$pct" || { echo "FAIL: $1: L7 split does not follow $w1/$w2"; agent_failures=$((agent_failures + 1)); }
}

split_failures_before=$agent_failures
file_changes=0 ctl_changes=0 refusals=0 bad_refusals=0
# CANARY_ROUNDS shortens a local run (even number; the test's contract is 200).
rounds=${CANARY_ROUNDS:-200}
for i in $(seq 0 $((rounds - 1))); do
  read -r w1 w2 <<<"${weights[$((i % ${#weights[@]}))]}"
  if ((i % 2 == 0)); then
    if ((i % 4 == 0)); then
      IFS='|' read -r l7line s1 bw1 bw2 want <<<"${invalid[$(((i / 4) % ${#invalid[@]}))]}"
      before_v=$(version) before_r=$(refused)
      agent_write_routing "$l7line" "$s1" "$bw1" "$bw2"
      if wait_until refused_above "$before_r"; then
        st=$(agent_status)
        msg=$(messages_of "$st")
        if [[ $(version_of "$st") == "$before_v" && $msg == *"$want"* ]]; then
          refusals=$((refusals + 1))
        else
          echo "FAIL: invalid config #$((i / 4)): version $(version_of "$st") (was $before_v), message: $msg"
          bad_refusals=$((bad_refusals + 1))
        fi
      else
        echo "FAIL: invalid config #$((i / 4)) was not refused within 5 s"
        bad_refusals=$((bad_refusals + 1))
      fi
    fi
    before_v=$(version)
    agent_write_routing "name: primary" v1 "$w1" "$w2"
    wait_until version_above "$before_v" || { echo "FAIL: file change $i not applied within 5 s"; agent_failures=$((agent_failures + 1)); }
    file_changes=$((file_changes + 1))
  else
    out=$(agent_ctl weights productpage "v1=$w1" "v2=$w2") || { echo "FAIL: sluicectl weights: $out"; agent_failures=$((agent_failures + 1)); }
    ctl_changes=$((ctl_changes + 1))
  fi
  check_split "change $i ($([[ $((i % 2)) == 0 ]] && echo file || echo sluicectl))" "$w1" "$w2"
done
agent_check "$file_changes file changes and $ctl_changes sluicectl changes each followed by both planes" \
  test "$file_changes" -eq $((rounds / 2)) -a "$ctl_changes" -eq $((rounds / 2)) -a "$agent_failures" -eq "$split_failures_before"
agent_check "$refusals invalid configs refused with their file:line:col, serving version unchanged" \
  test "$refusals" -eq $(((rounds + 3) / 4)) -a "$bad_refusals" -eq 0

touch "$AGENT_WORK/stop"
wait "$churn_pid"
kill -INT "$wrk_pid"
wait "$wrk_pid"
requests=$(awk '/requests in/ {print $1}' "$AGENT_WORK/wrk.txt")
agent_check "wrk ran ($requests requests) with no socket errors" \
  bash -c "[[ ${requests:-0} -gt 0 ]] && ! grep -q 'Socket errors' '$AGENT_WORK/wrk.txt'"
agent_check "wrk saw no non-2xx response" bash -c "! grep -q 'Non-2xx' '$AGENT_WORK/wrk.txt'"
churn=$(python3 -c "
import json,sys
tot=0; err={}
for line in open('$AGENT_WORK/churn.jsonl'):
    j=json.loads(line); tot+=sum(j['backends'].values())
    for k,v in j['errors'].items(): err[k]=err.get(k,0)+v
print(tot, sum(err.values()), err)")
echo "churner: $churn"
agent_check "the TCP churner saw no reset, refused or timed-out connection" \
  bash -c "read -r total errors _ <<<'$churn'; [[ \$total -gt 0 && \$errors -eq 0 ]]"
[[ $agent_failures -gt 0 ]] && cat "$AGENT_WORK/wrk.txt"
agent_finish

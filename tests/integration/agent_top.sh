#!/usr/bin/env bash
# `sluicectl top` as a user runs it: in a terminal (tmux, 200x50), against a
# running sluiced on the namespace topology, during a live canary shift. The
# screen (capture-pane) must show each port's configured weight and observed
# share at 70/30, then, within 15 s of `sluicectl weights productpage v1=50
# v2=50`, 50.0% configured and observed within ±5 points on both ports;
# `top --once --json` must give the same figures to scripts within those
# 15 s (read again until then, as the screen is).
#
# Tolerance: as agent_ui.sh (>= 1,500 requests and connections in the 10 s
# window at 50/50: sd <= 1.3 points, ±5 is >= 3.8 sd).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

if ! command -v tmux >/dev/null; then
  echo "SKIP: tmux is not installed (tools/install-deps.sh installs it)"
  [[ ${CI:-} == true ]] && exit 1
  exit 77
fi

agent_setup top
agent_write_routing "name: primary" v1 70 30
agent_start
agent_background_load 90

session="slc-top-$$"
# tmux's server socket in a directory of the test's own, not /tmp/tmux-UID.
TMUX_TMPDIR=$(mktemp -d /tmp/slc-agent-top-tmux.XXXXXX)
export TMUX_TMPDIR
tmux_cleanup() { tmux kill-session -t "=$session" 2>/dev/null; rm -rf -- "$TMUX_TMPDIR"; }
topo_on_cleanup tmux_cleanup
tmux new-session -d -s "$session" -x 200 -y 50 \
  "nsenter --net=/run/netns/$(topo_ns node) $SLUICECTL top productpage --admin $AGENT_ADMIN"

# screen_shows W1 W2 WITHIN_S: the pane shows, for both ports, v1 and v2 with
# configured W1%/W2% and observed shares within ±5 points of them.
# The pane's rows: "productpage:9080  L7 ..." then "  v1   70.0%   69.3% ...".
cat >"$AGENT_WORK/screen.py" <<'PY'
import re, sys
want = {"v1": float(sys.argv[1]), "v2": float(sys.argv[2])}
seen, port = {}, None
for line in sys.stdin:
    m = re.match(r"productpage:(\d+)\s+(L4|L7)", line)
    if m:
        port = m.group(1)
        continue
    m = re.match(r"\s+(v1|v2)\s+([\d.]+)%\s+([\d.]+)%", line)
    if m and port:
        seen[(port, m.group(1))] = (float(m.group(2)), float(m.group(3)))
ok = all(abs(seen.get((p, s), (-1, -1))[0] - w) < 1e-6 and abs(seen[(p, s)][1] - w) <= 5
         for p in ("9080", "9081") for s, w in want.items())
sys.exit(0 if ok else 1)
PY
screen_shows() {
  local deadline=$((SECONDS + $3)) screen
  while ((SECONDS < deadline)); do
    screen=$(tmux capture-pane -p -t "=$session:")
    if python3 "$AGENT_WORK/screen.py" "$1" "$2" <<<"$screen"; then
      echo "$screen" | sed -n '1,16p' | sed 's/^/    | /'
      return 0
    fi
    sleep 0.5
  done
  echo "  the screen after ${3} s:"
  echo "$screen" | sed 's/^/    | /'
  return 1
}

agent_check "top shows 70/30 configured and observed on both ports" screen_shows 70 30 40
agent_wait_full_window
out=$(agent_ctl weights productpage v1=50 v2=50 2>&1)
shifted=$SECONDS   # the shift is in force on both planes once the command returns
echo "sluicectl weights: $out"
agent_check "within 15 s of the shift top shows 50/50 ±5 on both ports" screen_shows 50 50 15
echo "  (shown $((SECONDS - shifted)) s after the shift; the window was 10 s of 70/30 before it)"
agent_check "top names the change it shows (the override's version)" \
  bash -c "tmux capture-pane -p -t '=$session:' | grep -q 'last change .*(override): productpage:9080 weights'"

metrics=$(agent_curl "http://$AGENT_ADMIN/stats/prometheus")
configured_share_is() { grep -qF "sluice_route_configured_share{destination_service=\"productpage\",destination_port=\"$1\",destination_version=\"v1\",plane=\"$2\"} 0.5" <<<"$metrics"; }
agent_check "/stats/prometheus: sluice_route_configured_share is 0.5 for v1 on both ports" \
  eval 'configured_share_is 9080 l7 && configured_share_is 9081 l4'

# The same figures for scripts. Observed shares are over the last 10 s, so
# they reach 50/50 +-5 once the window holds mostly post-shift traffic: the
# JSON is read again (bounded: until 15 s after the shift, one window and
# then some) until it does, as a script watching a shift would.
json_holds_shift() {
  python3 -c '
import json, sys
j = json.loads(sys.argv[1])
ports = {p["port"]: p for p in j["ports"]}
ok = set(ports) == {9080, 9081}
for p in ports.values():
    s = {x["name"]: x for x in p["subsets"]}
    ok = ok and all(s[n]["configured"] == 0.5 and abs(s[n]["observed"] - 0.5) <= 0.05 for n in ("v1", "v2"))
    ok = ok and len(s["v1"]["endpoints"]) == 2
sys.exit(0 if ok else 1)' "$1"
}
until json=$(agent_ctl top productpage --once --json) && json_holds_shift "$json"; do
  ((SECONDS - shifted < 15)) || break
  sleep 0.5
done
echo "  (top --once --json read $((SECONDS - shifted)) s after the shift)"
agent_check "top --once --json: both ports, configured 0.5 and observed shares for v1 and v2 within 15 s of the shift" \
  json_holds_shift "$json"

tmux send-keys -t "=$session:" q
sleep 0.5
agent_check "q quits top" bash -c "! tmux has-session -t '=$session' 2>/dev/null"

agent_finish

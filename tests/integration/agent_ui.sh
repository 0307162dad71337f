#!/usr/bin/env bash
# The agent's /ui page in a real browser (Debian's chromium, headless, driven
# through the DevTools protocol by agent_ui_check.py) during a live canary
# shift on the namespace topology: the page's DOM must show both ports'
# observed shares move from 70/30 to within ±5 points of 50/50 within 15 s of
# `sluicectl weights productpage v1=50 v2=50`, then show a refused change with
# its file:line:col while the old version serves, then notice an agent restart
# and show the restarted agent's state.
#
# Tolerance: the page shows the agent's 10 s window. At ~150-300 requests
# and new connections a second a 50/50 window holds >= 1,500 of each, so a
# binomial share has sd <= 1.3 points and ±5 is >= 3.8 sd; the window is
# fully past the change 10 s after it (within ±5 after 7.5 s).
#
# SLUICE_UI_SCREENSHOT=PATH keeps a screenshot of the page after the shift.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=agent_lib.sh
source "$here/agent_lib.sh"

chromium_bin=$(command -v chromium || true)
if [[ -z $chromium_bin ]]; then
  echo "SKIP: chromium is not installed (tools/install-deps.sh installs it)"
  [[ ${CI:-} == true ]] && exit 1
  exit 77
fi

agent_setup ui
agent_write_routing "name: primary" v1 70 30
agent_start
agent_background_load 120

# Served from the binary, read-only, with a strict policy: no inline or foreign script.
headers=$(agent_curl -sD - -o /dev/null "http://$AGENT_ADMIN/ui")
js_type=$(agent_curl -s -o /dev/null -w '%{content_type}' "http://$AGENT_ADMIN/ui/app.js")
agent_check "/ui: text/html with Content-Security-Policy default-src 'self' and nosniff; app.js as JavaScript" \
  eval 'grep -qi "^content-type: text/html" <<<"$headers" &&
        grep -qi "^content-security-policy: default-src '"'"'self'"'"'" <<<"$headers" &&
        grep -qi "^x-content-type-options: nosniff" <<<"$headers" && [[ $js_type == text/javascript* ]]'

profile=$(mktemp -d /tmp/slc-agent-ui-chromium.XXXXXX)
chromium_cleanup() { rm -rf -- "$profile"; }
topo_on_cleanup chromium_cleanup
# In the node namespace (where the admin API listens). The flags keep it
# off the network and out of the user's profile, TMPDIR keeps its
# temporary files (/tmp/org.chromium.Chromium.*) in the profile; its pid is
# cleaned up with the topology's.
topo_spawn "$(topo_ns node)" env TMPDIR="$profile" "$chromium_bin" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
  --remote-debugging-address=127.0.0.1 --remote-debugging-port=0 --window-size=1280,1000 \
  "http://$AGENT_ADMIN/ui"

check() { nsenter --net="/run/netns/$(topo_ns node)" python3 "$here/agent_ui_check.py" "$1" "$profile" "${@:2}"; }

agent_check "the page shows 70/30 configured and observed on both ports" \
  check shares --expect v1=0.7,v2=0.3 --within 40
agent_wait_full_window
out=$(agent_ctl weights productpage v1=50 v2=50 2>&1)
since=$(date +%s.%N)   # the shift is in force on both planes once the command returns
echo "sluicectl weights: $out"
screenshot=()
[[ -n ${SLUICE_UI_SCREENSHOT:-} ]] && screenshot=(--screenshot "$SLUICE_UI_SCREENSHOT")
agent_check "within 15 s of the shift the page shows 50/50 ±5 on both ports" \
  check shares --expect v1=0.5,v2=0.5 --within 15 --since "$since" "${screenshot[@]}"

version=$(agent_json "$(agent_status)" 'j["version"]')
# A weight that is not a number: refused at routing.yaml:10.
agent_write_routing "name: primary" v1 abc 50
agent_check "a refused change shows with its file:line and the version still serving" \
  check refused --needle "routing.yaml:10" --version "$version" --within 10

agent_write_routing "name: primary" v1 50 50
agent_stop TERM
agent_start
agent_check "after sluiced restarts the page says so and shows the new agent's state" \
  check restarted --within 20

agent_finish

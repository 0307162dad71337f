#!/usr/bin/env bash
# The DaemonSet's capabilities are the ones sluiced needs, and no more:
# sluiced runs as the container would (uid 0, every capability outside the
# manifest's `add` list removed from the bounding set) in a network namespace
# of its own with XDP on a veth, and becomes ready; with any one of those
# capabilities removed as well, it does not.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=lib/topology.sh
source "$here/lib/topology.sh"
: "${SLUICED:?set SLUICED to the sluiced binary}"
topo_require_root
topo_require_cmd ip nsenter setpriv curl python3
python3 -c 'import yaml' 2>/dev/null || _topo_fail_or_skip "python3-yaml"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

caps=$(python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "DaemonSet":
        print(" ".join(c.lower() for c in d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"]))
' "$root/deploy/kubernetes/daemonset.yaml")
[[ -n "$caps" ]] || { echo "FAIL: no capabilities in deploy/kubernetes/daemonset.yaml"; exit 1; }

ns="slck8scap$$"
pin="/sys/fs/bpf/slc-k8s-caps-$$"
work=$(mktemp -d /tmp/slc-k8s-caps.XXXXXX)
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf -- "$pin" "$work"
}
trap cleanup EXIT
ip netns add "$ns" || exit 1
ip -n "$ns" link add v0 type veth peer name v1
ip -n "$ns" link set lo up
ip -n "$ns" link set v0 up
ip -n "$ns" link set v1 up

ready_with() {   # ready_with CAP...: 0 if sluiced becomes ready with only these capabilities
  local set="-all" c ok=1
  for c in "$@"; do set+=",+$c"; done
  nsenter --net="/run/netns/$ns" setpriv --bounding-set="$set" --inh-caps=-all -- \
    "$SLUICED" --config-dir "$root/docs/examples/productpage" --iface v0 --pin-dir "$pin" \
    --admin 127.0.0.1:15000 --workers 1 --detach-on-exit >"$work/sluiced.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    nsenter --net="/run/netns/$ns" curl -sf -m 1 -o /dev/null http://127.0.0.1:15000/ready && { ok=0; break; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=""
  rm -rf -- "$pin"
  return $ok
}

failures=0
# shellcheck disable=SC2086
if ready_with $caps; then
  echo "PASS: sluiced attaches XDP and becomes ready with only: $caps"
else
  echo "FAIL: sluiced with only $caps did not become ready:"
  tail -5 "$work/sluiced.log"
  failures=$((failures + 1))
fi
for drop in $caps; do
  rest=()
  for c in $caps; do [[ $c == "$drop" ]] || rest+=("$c"); done
  if ready_with "${rest[@]}"; then
    echo "FAIL: sluiced became ready without $drop: the DaemonSet asks for more than it needs"
    failures=$((failures + 1))
  else
    echo "PASS: without $drop sluiced does not start ($(grep -m1 -oE '(Permission denied|Operation not permitted)' "$work/sluiced.log"))"
  fi
done
((failures == 0))

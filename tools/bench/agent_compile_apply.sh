#!/usr/bin/env bash
# Compile-and-apply time of sluiced for big configs, and its memory.
#
# For each size (default 10,000 services, then 2,000: the largest round
# number that fits the XDP tables at their default sizes, see below) the
# config of tools/bench/config_compile_gen.py (per service a ServiceEntry
# with one VIP, an HTTP and a TCP port and E endpoints, a DestinationRule
# with 2 subsets, a 90/10 VirtualService) is written, and sluiced is started
# on it in a namespace of its own (it installs one local route per L7 VIP),
# with no --iface: the XDP program is loaded and its maps written, not
# attached. Measured from sluiced's own log timestamps (one line per apply):
#   start -> "config version 1 applied" (or "not applied": the reason is printed)
#   SIGHUP -> "config version 2 applied" (a reload of the same files)
# plus sluiced's CPU time over the reload (/proc/PID/stat), where the XDP
# tables were written ("xdp: version N" debug line) and the RSS once applied.
# Baseline in the same run: tools/config_compile_bench on the same files
# (one run: yaml-cpp alone, then sluice's load + compile in-process, CPU).
#
# Usage: sudo tools/bench/agent_compile_apply.sh [ENDPOINTS] [SIZES...]   (defaults 10, 10000 2000)
# Bounded: each wait for an apply gives up after 600 s.
set -uo pipefail
endpoints=${1:-10}
shift || true
sizes=(10000 2000)
[[ $# -gt 0 ]] && sizes=("$@")
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$repo/${BUILD_DIR:-build}" && pwd)
# SLUICED and CONFIG_COMPILE_BENCH may name other binaries; otherwise they are built here.
if [[ -z "${SLUICED:-}" ]]; then
  ninja -C "$build" -j2 userspace/agent/sluiced tools/config_compile_bench >/dev/null ||
    { echo "build failed: ninja -C $build userspace/agent/sluiced tools/config_compile_bench" >&2; exit 1; }
fi
sluiced=${SLUICED:-$build/userspace/agent/sluiced}
compile_bench=${CONFIG_COMPILE_BENCH:-$build/tools/config_compile_bench}
[[ $EUID -eq 0 ]] || { echo "SKIP: needs root (netns, bpffs)" >&2; exit 77; }
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

ns="slc-agbcmp-$$"
pin="/sys/fs/bpf/slc-agbcmp-$$"
work=$(mktemp -d /tmp/slc-agbcmp.XXXXXX)
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  [[ -d "$pin" ]] && rm -rf -- "$pin"
  ip netns list | awk '{print $1}' | grep -qx -- "$ns" && ip netns del "$ns"
  rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$ns" && ip -n "$ns" link set lo up || exit 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# wait_log PATTERN: until a log line matches (or sluiced exits / 600 s pass)
wait_log() {
  local deadline=$((SECONDS + 600))
  until grep -qE "$1" "$work/sluiced.log"; do
    kill -0 "$pid" 2>/dev/null || { echo "  sluiced exited; log tail:"; tail -5 "$work/sluiced.log"; return 1; }
    ((SECONDS < deadline)) || { echo "  gave up after 600 s waiting for /$1/"; return 1; }
    sleep 0.2
  done
}
# log_time REGEX [NTH]: the timestamp (s since midnight) of the NTH line matching (default 1)
log_time() {
  grep -E "$1" "$work/sluiced.log" | sed -n "${2:-1}p" |
    awk '{split(substr($1, 12), t, ":"); printf "%.3f\n", t[1] * 3600 + t[2] * 60 + t[3]; found = 1}
         END {if (!found) print "float(\"nan\")"}'
}
now_s() { date +%H:%M:%S.%N | awk '{split($1, t, ":"); printf "%.3f\n", t[1] * 3600 + t[2] * 60 + t[3]}'; }
sub() { python3 -c "print('%.2f' % ($1 - $2))"; }
hz=$(getconf CLK_TCK)

# measure_agent LABEL [EXTRA SLUICED ARGS...]: start -> applied, SIGHUP ->
# applied, RSS; returns 1 if version 1 was not applied.
measure_agent() {
  local label=$1 ok=0 t_start c0 c1 t_hup
  shift
  rm -f "$work/sluiced.log"
  echo "  sluiced $label:"
  t_start=$(now_s)
  nsenter --net="/run/netns/$ns" "$sluiced" --config-dir "$work/config" --pin-dir "$pin" \
    --admin 127.0.0.1:15000 --workers 2 --log-level debug --detach-on-exit "$@" >"$work/sluiced.log" 2>&1 &
  pid=$!
  if wait_log "config version 1 (applied|not applied)|config refused"; then
    if grep -q "config version 1 applied" "$work/sluiced.log"; then
      ok=1
      echo "  start -> config version 1 applied:      $(sub "$(log_time 'config version 1 applied')" "$t_start") s" \
        "(datapath loaded after $(sub "$(log_time 'datapath loaded')" "$t_start") s," \
        "XDP tables written at $(sub "$(log_time 'xdp: version 1 ')" "$t_start") s)"
      echo "  sluiced CPU time until then: $(python3 -c "print('%.2f' % ($(cpu_ticks "$pid") / $hz))") s"
      awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {printf "  RSS after apply: VmRSS %.1f MiB, VmHWM %.1f MiB\n", r/1024, h/1024}' "/proc/$pid/status"
      c0=$(cpu_ticks "$pid")
      t_hup=$(now_s)
      kill -HUP "$pid"
      if wait_log "config version 2 (applied|not applied)|config refused"; then
        c1=$(cpu_ticks "$pid")
        echo "  SIGHUP -> config version 2 applied:     $(sub "$(log_time 'config version 2 ')" "$t_hup") s wall," \
          "$(python3 -c "print('%.2f' % (($c1 - $c0) / $hz))") s sluiced CPU" \
          "(XDP tables written $(sub "$(log_time 'config version 2 ')" "$(log_time 'xdp: version 2 ')") s before the line)"
        grep -E "config version 2 " "$work/sluiced.log" | cut -c1-200 | sed 's/^/    log: /'
        awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {printf "  RSS after reload: VmRSS %.1f MiB, VmHWM %.1f MiB\n", r/1024, h/1024}' "/proc/$pid/status"
      fi
    else
      echo "  start -> refused after $(sub "$(log_time 'config version 1 not applied|config refused')" "$t_start") s:"
      grep -E "config version 1 not applied|config refused" "$work/sluiced.log" | head -3 | cut -c1-300 | sed 's/^/    log: /'
      awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {printf "  RSS (nothing serving): VmRSS %.1f MiB, VmHWM %.1f MiB\n", r/1024, h/1024}' "/proc/$pid/status"
    fi
  fi
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=""
  [[ -d "$pin" ]] && rm -rf -- "$pin"
  ((ok == 1))
}

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
for n in "${sizes[@]}"; do
  rm -rf "${work:?}/config" "$work/sluiced.log"
  python3 "$repo/tools/bench/config_compile_gen.py" "$work/config" --services "$n" --endpoints "$endpoints"
  echo "== $n services x $endpoints endpoints ($(du -sh "$work/config" | cut -f1) of YAML)"
  echo "baseline, tools/config_compile_bench (in-process, 1 run, CPU):"
  "$compile_bench" "$work/config" 1 | grep -E "baseline|sluice (load|compile|total)" | sed 's/^ */    /'

  if ! measure_agent "with the XDP plane"; then
    echo "  -> again with --no-xdp (compile + L7 plane only), to measure the rest at this size:"
    measure_agent "--no-xdp" --no-xdp
  fi
  [[ -d "$pin" ]] && rm -rf -- "$pin"
done

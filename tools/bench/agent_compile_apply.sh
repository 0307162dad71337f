#!/usr/bin/env bash
# Compile-and-apply time of sluiced for big configs, and its memory.
#
# For each size (default 10,000 services, then 2,000) the config of
# tools/bench/config_compile_gen.py (per service a ServiceEntry with one VIP,
# an HTTP and a TCP port and E endpoints, a DestinationRule with 2 subsets, a
# 90/10 VirtualService; 1,000 services per file) is written, and sluiced is
# started on it in a namespace of its own (it installs one local route per L7
# VIP), with no --iface: the XDP program is loaded and its maps written, not
# attached. The XDP tables are sized for the config with sluiced's flags:
#   --max-services 2N (two ports per VIP) --max-subsets 2N (v1/v2 of the TCP
#   port) --max-backends 2NE (each endpoint on both ports)
# Measured from sluiced's own log timestamps (one line per apply):
#   start -> "config version 1 applied" (or "not applied": the reason is printed)
#   SIGHUP, no file changed -> "config version 2 applied" (nothing re-parsed)
#   one file's weights edited -> "config version 3 applied" (the watcher,
#     --debounce-ms 10, reloads; that file is re-parsed)
# plus sluiced's CPU time over each reload (/proc/PID/stat), where the XDP
# tables were written ("xdp: version N" debug line) and VmRSS/VmHWM 3 s after
# each (sluiced returns freed heap a second after a reload).
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

# reload_step VERSION LABEL [COMMAND...]: run COMMAND (default: SIGHUP to
# sluiced; a file edit is seen by the watcher), wait for VERSION, print wall
# and CPU from just before COMMAND, then RSS 3 s later (sluiced trims its heap
# a second after a reload).
reload_step() {
  local version=$1 label=$2 c0 c1 t0
  shift 2
  c0=$(cpu_ticks "$pid")
  t0=$(now_s)
  if [[ $# -gt 0 ]]; then "$@"; else kill -HUP "$pid"; fi
  wait_log "config version $version (applied|not applied)|config refused" || return 1
  c1=$(cpu_ticks "$pid")
  echo "  $label -> config version $version applied: $(sub "$(log_time "config version $version ")" "$t0") s wall," \
    "$(python3 -c "print('%.2f' % (($c1 - $c0) / $hz))") s sluiced CPU" \
    "(XDP tables written $(sub "$(log_time "config version $version ")" "$(log_time "xdp: version $version ")") s before the line)"
  grep -E "config: parsed" "$work/sluiced.log" | tail -1 | cut -c25-200 | sed 's/^/    log: /'
  grep -E "config version $version " "$work/sluiced.log" | cut -c1-200 | sed 's/^/    log: /'
  sleep 3
  awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {printf "  RSS 3 s after it: VmRSS %.1f MiB, VmHWM %.1f MiB\n", r/1024, h/1024}' "/proc/$pid/status"
}
# edit_first_file: one VirtualService's weights 90/10 -> 80/20 (same size) in the first file.
edit_first_file() {
  sed -i '0,/weight: 90/s//weight: 80/; 0,/weight: 10/s//weight: 20/' "$(find "$work/config" -name '*.yaml' | sort | head -1)"
}

# measure_agent LABEL [EXTRA SLUICED ARGS...]: start -> applied, SIGHUP ->
# applied, RSS; returns 1 if version 1 was not applied.
measure_agent() {
  local label=$1 ok=0 t_start
  shift
  : >"$work/sluiced.log"
  echo "  sluiced $label:"
  t_start=$(now_s)
  nsenter --net="/run/netns/$ns" "$sluiced" --config-dir "$work/config" --pin-dir "$pin" \
    --admin 127.0.0.1:15000 --admin-socket "$work/admin.sock" --workers 2 --log-level debug --debounce-ms 10 --detach-on-exit "$@" >"$work/sluiced.log" 2>&1 &
  pid=$!
  if wait_log "config version 1 (applied|not applied)|config refused"; then
    if grep -q "config version 1 applied" "$work/sluiced.log"; then
      ok=1
      echo "  start -> config version 1 applied:      $(sub "$(log_time 'config version 1 applied')" "$t_start") s" \
        "(datapath loaded after $(sub "$(log_time 'datapath loaded')" "$t_start") s," \
        "XDP tables written at $(sub "$(log_time 'xdp: version 1 ')" "$t_start") s)"
      echo "  sluiced CPU time until then: $(python3 -c "print('%.2f' % ($(cpu_ticks "$pid") / $hz))") s"
      grep -E "BPF datapath loaded" "$work/sluiced.log" | head -1 | cut -c25-400 | sed 's/^/    log: /'
      sleep 3
      awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {printf "  RSS 3 s after apply: VmRSS %.1f MiB, VmHWM %.1f MiB\n", r/1024, h/1024}' "/proc/$pid/status"
      reload_step 2 "SIGHUP, no file changed"
      # One file's weights change (same size, so only the bytes tell), seen by
      # the watcher (--debounce-ms 10): the incremental path.
      reload_step 3 "one file edited (watcher)" edit_first_file
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

  sizing=(--max-services $((2 * n)) --max-subsets $((2 * n)) --max-backends $((2 * n * endpoints)))
  if ! measure_agent "with the XDP plane, ${sizing[*]}" "${sizing[@]}"; then
    echo "  -> again with --no-xdp (compile + L7 plane only), to measure the rest at this size:"
    measure_agent "--no-xdp" --no-xdp
  fi
  [[ -d "$pin" ]] && rm -rf -- "$pin"
done

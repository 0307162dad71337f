# shellcheck shell=bash
# Shared by tools/bench/agent_*.sh: builds what the agent benchmarks run,
# points tests/integration/agent_lib.sh (topology, backends, config, stop and
# teardown) at the build, and starts sluiced with the flags a benchmark needs.
# Everything is created under names with this run's pid and removed by exact
# name on exit (agent_lib/topology traps).
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "$repo/${BUILD_DIR:-build}" && pwd)
# SLUICED, SLUICECTL, XDP_PASS_OBJ, SLUICE_TEST_BACKEND and SLUICE_LOADGEN
# may name other binaries; otherwise they are built here.
if [[ -z "${SLUICED:-}" ]]; then
  bench_targets=(userspace/agent/sluiced userspace/ctl/sluicectl tools/sluice-test-backend tools/sluice-loadgen
                 bpf/xdp_pass.bpf.o)
  ninja -C "$build" -j2 "${bench_targets[@]}" >/dev/null ||
    { echo "build failed: ninja -C $build ${bench_targets[*]}" >&2; exit 1; }
  export SLUICED="$build/userspace/agent/sluiced" SLUICECTL="$build/userspace/ctl/sluicectl" \
    XDP_PASS_OBJ="$build/bpf/xdp_pass.bpf.o" SLUICE_TEST_BACKEND="$build/tools/sluice-test-backend" \
    SLUICE_LOADGEN="$build/tools/sluice-loadgen"
fi
# shellcheck source=../../tests/integration/agent_lib.sh
source "$repo/tests/integration/agent_lib.sh"

# bench_start DEBOUNCE_MS [EXTRA SLUICED ARGS...]: sluiced in the node
# namespace on the topology's interfaces, 2 workers; waits for /ready.
bench_start() {
  local debounce=$1 node i ifaces=(--iface c0)
  shift
  node=$(topo_ns node)
  for i in 1 2 3 4; do ifaces+=(--iface "b$i"); done
  nsenter --net="/run/netns/$node" "$SLUICED" --config-dir "$AGENT_WORK/config" --pin-dir "$AGENT_PIN" \
    "${ifaces[@]}" --admin "$AGENT_ADMIN" --admin-socket "$AGENT_SOCKET" --workers 2 --debounce-ms "$debounce" "$@" >>"$AGENT_WORK/sluiced.log" 2>&1 &
  AGENT_PID=$!
  for i in $(seq 300); do
    agent_curl -sf "http://$AGENT_ADMIN/ready" >/dev/null && return 0
    kill -0 "$AGENT_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "sluiced did not become ready within 30 s; its log:" >&2
  tail -30 "$AGENT_WORK/sluiced.log" >&2
  exit 1
}

# bench_rss PID LABEL: one row from /proc/PID/status (VmRSS now, VmHWM peak).
bench_rss() {
  awk -v label="$2" '/^VmRSS:/ {rss=$2} /^VmHWM:/ {hwm=$2}
    END {printf "  %-46s VmRSS %8.1f MiB   VmHWM %8.1f MiB\n", label, rss/1024, hwm/1024}' "/proc/$1/status"
}

bench_header() {
  echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)," \
    "build $(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))')"
}

#!/usr/bin/env bash
# Per-request cost of routing decisions and host picks, each as a ratio to a
# baseline measured in the same run:
#   routes: BM_Route_Baseline_CatchAll (one unconditional route, 70/30 split)
#   picks:  BM_Pick_Baseline_RandomEqual with the same number of hosts
# CPU time, not wall time: the code is single-threaded with no I/O, and on a
# shared machine wall time mostly measures the neighbours.
# Usage: tools/bench/lb_routing.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
bin="$build/tools/sluice-lb-routing-bench"
[[ -x "$bin" ]] || ninja -C "$build" tools/sluice-lb-routing-bench
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" --benchmark_format=json --benchmark_min_time=0.2 --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true >"$out"
python3 - "$out" <<'PY'
import json, sys
runs = {b["run_name"]: b["cpu_time"] for b in json.load(open(sys.argv[1]))["benchmarks"]
        if b.get("aggregate_name") == "median"}
def baseline_for(name):
    if name.startswith("BM_Route"):
        return "BM_Route_Baseline_CatchAll"
    return "BM_Pick_Baseline_RandomEqual/" + name.split("/")[1]
print(f"{'benchmark':45} {'ns/op':>9} {'x baseline':>11}")
for name, ns in runs.items():
    base = runs[baseline_for(name)]
    print(f"{name:45} {ns:9.1f} {ns / base:11.2f}")
PY

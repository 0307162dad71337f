#!/usr/bin/env bash
# Config compile benchmark: generates 10,000 services x 10 endpoints (each a
# ServiceEntry, a DestinationRule with 2 subsets and a 90/10 VirtualService),
# then times yaml-cpp alone (baseline), sluice's load and its compile, median
# of RUNS runs. Target: compile < 1 s.
#   tools/bench/config_compile.sh [SERVICES] [ENDPOINTS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
services=${1:-10000}
endpoints=${2:-10}
runs=${3:-5}
build=${BUILD_DIR:-build}
ninja -C "$build" tools/config_compile_bench >/dev/null
out=$(mktemp -d /tmp/slc-config-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
python3 tools/bench/config_compile_gen.py "$out" --services "$services" --endpoints "$endpoints"
echo "config_compile: $services services x $endpoints endpoints, build type $(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))')"
"$build/tools/config_compile_bench" "$out" "$runs"

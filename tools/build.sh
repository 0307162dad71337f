#!/usr/bin/env bash
# Configure (or reconfigure) and build with meson into ./build. Safe to rerun.
# With CI=true: -Dwerror=true, and the build type the benchmarks measure
# (tools/bench/*.sh run ./build; debugoptimized, the project default) is set
# explicitly, so a ./build left configured otherwise is put back. CI compiles
# with -g1 (line tables and function names: backtraces still name file:line;
# no variable info), the same code as -g at a sixth less compile time, which
# keeps CI inside its 20-minute budget on 2 CPUs (docs/testing.md). The unit
# test `static_libraries` checks the libraries link in every build type;
# `-Dbuildtype=release` and `debug` are built in full by hand before a
# release (a third full build would not fit CI's 20-minute budget on 2 CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
opts=()
[[ "${CI:-}" == "true" ]] && opts+=(-Dwerror=true -Dbuildtype=debugoptimized -Dcpp_args=-g1)
if [[ -f build/build.ninja ]]; then
  if ((${#opts[@]})); then meson configure build "${opts[@]}"; fi
else
  meson setup build "${opts[@]}"
fi
ninja -C build

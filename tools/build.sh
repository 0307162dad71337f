#!/usr/bin/env bash
# Configure (or reconfigure) and build with meson into ./build. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
opts=()
[[ "${CI:-}" == "true" ]] && opts+=(-Dwerror=true)
if [[ -f build/build.ninja ]]; then
  meson configure build "${opts[@]}" >/dev/null 2>&1 || true
else
  meson setup build "${opts[@]}"
fi
ninja -C build

#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs every suite
# (unit, bpf, integration, fuzz corpus replay) and prints one summary line.
# Root is needed for the bpf and integration suites; with CI=true a missing
# privilege or kernel feature fails those tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
status=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || status=$?
python3 tools/test_summary.py build/meson-logs/testlog.json
exit $status

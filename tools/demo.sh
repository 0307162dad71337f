#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds, and runs sluice on
# the built-in productpage example (docs/examples/productpage).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
# The demo itself (topology, sluiced, canary shift, LB policies, cleanup) is
# tools/demo/productpage.sh; its exit status is non-zero if any error was seen.
exec tools/demo/productpage.sh "$@"

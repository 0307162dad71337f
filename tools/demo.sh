#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds, and runs sluice on
# the built-in productpage example (docs/examples/productpage).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
example=docs/examples/productpage
echo "== sluicectl validate $example"
build/userspace/ctl/sluicectl validate "$example"
echo "== sluicectl explain $example"
build/userspace/ctl/sluicectl explain "$example"

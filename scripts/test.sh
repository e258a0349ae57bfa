#!/usr/bin/env bash
# test.sh — the whole test suite, on a fresh Debian/Ubuntu machine: installs what it needs,
# brings up the Docker world (engine, registry, second engine behind SSH), runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TESTS=1 bash scripts/setup-host.sh
source "${WORLD_DIR:-/tmp/dlbox-world}/env"
# A real 2-node Slurm 22.05 cluster (network namespaces, a Docker engine and sshd per node) for the
# cluster tests; idempotent, a few seconds when its packages are installed.
bash scripts/slurm-world.sh up
source "${DLBOX_SLURM_DIR:-/tmp/dlbox-slurm}/env"
# The reference dev container CLI, to check that generated devcontainer.json files build and run.
# It needs Node >= 20 (Debian bookworm's own nodejs is 18: then that one test skips, saying why).
DC=${XDG_CACHE_HOME:-$HOME/.cache}/dlbox-test/devcontainers-cli   # outside the clone: kept between CI runs
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -ge 20 ]; then
  if [ ! -x "$DC/node_modules/.bin/devcontainer" ]; then
    npm install --silent --no-audit --no-fund --prefix "$DC" @devcontainers/cli@0.89.0 >/dev/null
  fi
  export DLBOX_DEVCONTAINER_CLI=$DC/node_modules/.bin/devcontainer
fi
exec .venv/bin/python -m pytest -q "$@"

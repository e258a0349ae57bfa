#!/usr/bin/env bash
# test.sh — the whole test suite, on a fresh Debian/Ubuntu machine: installs what it needs,
# brings up the Docker world (engine, registry, second engine behind SSH), runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TESTS=1 bash scripts/setup-host.sh
source "${WORLD_DIR:-/tmp/dlbox-world}/env"
exec .venv/bin/python -m pytest -q "$@"

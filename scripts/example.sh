#!/usr/bin/env bash
# example.sh — the main job end to end on the bundled example (examples/digits):
# set up the host, check it, build the environment, train in the container, prove it works.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
export DOCKER_BUILDKIT=1
dlbox=.venv/bin/dlbox
set -x
$dlbox doctor || true                                  # what this host can and cannot do, with fixes
$dlbox plan examples/digits                            # the decision and its reasons
$dlbox build examples/digits                           # base image pulled or bootstrapped, then BuildKit
$dlbox run -C examples/digits -- python train.py       # train in a fresh container, files owned by you
$dlbox verify examples/digits                          # GPU/torch/shm/ulimit checks inside the container
cat examples/digits/outputs/metrics.json

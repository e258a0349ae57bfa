#!/usr/bin/env bash
# gpu-lane.sh — prove dlbox on a real NVIDIA GPU and record what that machine says, as test fixtures.
#
# For a short-lived accelerator machine: an NVIDIA GPU and driver, a python3 with a CUDA torch,
# but no Docker and no network. dlbox runs from this source tree (PYTHONPATH=src); the few
# dependencies such a python3 lacks travel as wheels in .gpu-lane/wheels (ignored by git).
#
#   bash scripts/gpu-lane.sh --fetch-wheels   # here, where PyPI answers: fill .gpu-lane/wheels
#   bash scripts/gpu-lane.sh [OUT_DIR]        # there: everything lands in OUT_DIR (default $OUT,
#                                             # else ./gpu-lane-out); finishes in under 5 minutes
#
# It records nvidia-smi (plain, -q, -L, --query-gpu CSV with and without header, incl. compute_cap),
# runs `dlbox doctor --json`, `dlbox plan --json` live and from the recorded table, the
# in-container observation script and `dlbox verify --here --perf` on this python3, and writes
# SOURCES.md (date, machine) plus summary.txt. Without a GPU it stops after the recordings and
# says so (exit 2): that is how it is tested on machines without one.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
WHEELS=${GPU_LANE_WHEELS:-$ROOT/.gpu-lane/wheels}
# what a CUDA-torch python3 usually lacks of dlbox's needs (versions from constraints.txt)
NEEDS=(pydantic pydantic_core annotated-types typing-inspection platformdirs typing_extensions
       ruamel.yaml pip-requirements-parser pyparsing dependency-groups uv pathspec)

pin() { grep -i "^$(echo "$1" | sed 's/[-_.]/[-_.]/g')==" constraints.txt | head -1; }

if [ "${1:-}" = "--fetch-wheels" ]; then
  mkdir -p "$WHEELS"
  pyver=${LANE_PYVER:-3.12}
  reqs=(); for n in "${NEEDS[@]}"; do reqs+=("$(pin "$n")"); done
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$WHEELS" "${reqs[@]}"
  ls "$WHEELS"
  exit 0
fi

OUTDIR=${1:-${OUT:-$ROOT/gpu-lane-out}}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG=$OUTDIR/lane.log
START=$(date +%s)
say() { echo "[lane $(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
# step NAME TIMEOUT CMD... : run, keep stdout in OUTDIR/NAME, stderr in the log, never stop the lane
step() {
  local name=$1 limit=$2; shift 2
  timeout "$limit" "$@" > "$OUTDIR/$name" 2>> "$LOG"
  local rc=$?
  say "$name: exit $rc"
  echo "$name $rc" >> "$OUTDIR/exit-codes.txt"
  return $rc
}

: > "$OUTDIR/exit-codes.txt"
say "python: $($PY -c 'import sys;print(sys.executable, sys.version.split()[0])')"

# -- dlbox from the source tree, its missing dependencies from carried wheels --------------------
SITE=$(mktemp -d /tmp/dlbox-lane-site.XXXXXX)
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  missing=$("$PY" - <<'EOF'
import importlib.util as u
mods = {"pydantic": "pydantic", "pydantic_core": "pydantic_core", "annotated_types": "annotated_types",
        "typing_inspection": "typing_inspection", "platformdirs": "platformdirs", "ruamel.yaml": "ruamel.yaml",
        "pip_requirements_parser": "pip_requirements_parser", "pyparsing": "pyparsing",
        "dependency_groups": "dependency_groups", "uv": "uv", "pathspec": "pathspec"}
def has(m):
    try:
        return u.find_spec(m) is not None
    except ModuleNotFoundError:
        return False
print(" ".join(k for k, m in mods.items() if not has(m)))
EOF
)
  if [ -n "$missing" ]; then
    say "missing here: $missing; installing the carried wheels into $SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHEELS"/*.whl >> "$LOG" 2>&1 \
      || say "pip could not install the wheels (see lane.log)"
  fi
fi
export PYTHONPATH=$SITE:$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
DLBOX=("$PY" -c "from dlbox.cli import main; main()")
"${DLBOX[@]}" --help > /dev/null 2>> "$LOG" || { say "dlbox does not start from the source tree (see lane.log)"; exit 1; }

# -- recordings: what the driver says, verbatim -------------------------------------------------
SMI=$(command -v nvidia-smi || true)
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "uname: $(uname -srm)"
  echo "python: $($PY -c 'import sys;print(sys.version.split()[0])')"
  echo "torch: $($PY -c 'import torch;print(torch.__version__, torch.version.cuda)' 2>/dev/null || echo none)"
  echo "nvidia-smi: ${SMI:-absent}"
  echo "cpus: $(nproc)  mem: $(awk '/MemTotal/{print $2" kB"}' /proc/meminfo)"
} > "$OUTDIR/machine.txt"
if [ -z "$SMI" ]; then
  say "no nvidia-smi here: nothing to record"; cat "$OUTDIR/machine.txt"; exit 2
fi
step nvidia-smi.txt 60 "$SMI"
step nvidia-smi-q.txt 60 "$SMI" -q
step nvidia-smi-L.txt 60 "$SMI" -L
step query.csv.txt 60 "$SMI" --query-gpu=index,name,driver_version,compute_cap,memory.total,pci.bus_id --format=csv
step query-noheader.csv.txt 60 "$SMI" --query-gpu=index,name,compute_cap,memory.total --format=csv,noheader,nounits
GPU_NAME=$("$SMI" --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
DRIVER=$("$SMI" --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)

# -- dlbox on this machine ----------------------------------------------------------------------
step doctor.json 120 "${DLBOX[@]}" doctor --json
step plan.json 60 "${DLBOX[@]}" plan --json examples/digits
step plan-from-recording.json 60 "${DLBOX[@]}" plan --json --nvidia-smi "$OUTDIR/nvidia-smi.txt" examples/digits
step inside.json 300 "$PY" src/dlbox/templates/verify_inside.py
step verify-perf.json 300 "${DLBOX[@]}" verify --here --perf --json --python "$PY" --raw "$OUTDIR/raw"
[ -f "$OUTDIR/raw/perf.json" ] && cp "$OUTDIR/raw/perf.json" "$OUTDIR/perf.json"

# -- where it came from -------------------------------------------------------------------------
cat > "$OUTDIR/SOURCES.md" <<EOF
Recorded by scripts/gpu-lane.sh on $(date -u +%Y-%m-%d) on a lent accelerator machine:
${GPU_NAME:-unknown GPU}, driver ${DRIVER:-unknown}, $(uname -srm), $(awk '/^torch/{print "torch "$2" (CUDA "$3")"}' "$OUTDIR/machine.txt").
Files: nvidia-smi.txt (plain), nvidia-smi-q.txt (-q), nvidia-smi-L.txt (-L), query.csv.txt
(--query-gpu=index,name,driver_version,compute_cap,memory.total,pci.bus_id --format=csv),
query-noheader.csv.txt (the query dlbox itself runs), doctor.json, plan.json, inside.json,
perf.json, verify-perf.json.
EOF
{
  echo "gpu-lane on ${GPU_NAME:-?} (driver ${DRIVER:-?}) in $(( $(date +%s) - START ))s"
  cat "$OUTDIR/exit-codes.txt"
  "$PY" - "$OUTDIR/verify-perf.json" <<'EOF'
import json, sys
try:
    for c in json.load(open(sys.argv[1])):
        print(f"{c['id']:18} {c['status']:5} {c['detail']}")
except Exception as exc:
    print("no verify --perf result:", exc)
EOF
} > "$OUTDIR/summary.txt"
cat "$OUTDIR/summary.txt"
rm -rf "$SITE"

"""scripts/gpu-lane.sh, run here up to the point where a GPU is needed.

A test double on PATH (tests/fixtures/gpu-lane/nvidia-smi) replays a recorded H100 output, so
the lane's recording, `doctor --json`, `plan --json` and `verify --here --perf` steps all run;
the GPU measurements themselves come back as skips because this machine has no CUDA torch.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOUBLE = ROOT / "tests" / "fixtures" / "gpu-lane"


def _lane(out: Path, path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path, "PYTHON": sys.executable, "OUT": ""}
    return subprocess.run(["bash", str(ROOT / "scripts" / "gpu-lane.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=240)


def test_lane_records_and_plans_with_a_replayed_nvidia_smi(tmp_path):
    out = tmp_path / "lane"
    p = _lane(out, f"{DOUBLE}:{os.environ['PATH']}")
    assert p.returncode == 0, p.stdout + p.stderr
    recorded = (out / "nvidia-smi.txt").read_text()
    assert recorded == (ROOT / "tests/fixtures/nvidia-smi/h100-570.133.20.txt").read_text()
    for name in ("nvidia-smi-q.txt", "nvidia-smi-L.txt", "query.csv.txt", "doctor.json", "inside.json",
                 "SOURCES.md", "summary.txt", "machine.txt"):
        assert (out / name).stat().st_size > 0, name
    plan = json.loads((out / "plan.json").read_text())
    assert plan["gpu"] is True and plan["torch"]["variant"].startswith("cu")
    assert plan["host"]["driver"]["version"] == "570.133.20"
    assert [g["name"] for g in plan["host"]["gpus"]] == ["NVIDIA H100 80GB HBM3"]  # not "0"
    assert plan["host"]["gpus"][0]["compute_cap"] == "9.0"
    assert plan["host"]["gpus"][0]["compute_cap_from"] == "nvidia-smi --query-gpu=compute_cap"
    checks = json.loads((out / "verify-perf.json").read_text())
    assert {c["id"] for c in checks} >= {"nvidia-smi", "torch-import"}
    assert "570.133.20" in (out / "SOURCES.md").read_text()


def test_lane_without_nvidia_smi_stops_and_says_so(tmp_path):
    if shutil.which("nvidia-smi", path="/usr/bin:/bin"):
        pytest.skip("this machine has a real nvidia-smi")
    p = _lane(tmp_path / "lane", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    assert p.returncode == 2
    assert "no nvidia-smi here" in p.stdout

"""`dlbox verify --perf` in a real container on this GPU-less machine: the perf probe runs next to
the in-container checks with the project's run flags, the GPU figures come back as a skip and the
DataLoader-through-/dev/shm figure is measured and judged. (The GPU figures themselves were
measured by scripts/gpu-lane.sh on a real H200: tests/unit/test_gpu_lane_recording.py.)"""

from __future__ import annotations

import json

import pytest

from tests.integration.test_core_real import digits, dlbox  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.docker]


def test_verify_perf_in_the_container_on_a_cpu_host(digits):  # noqa: F811
    proc = dlbox("verify", "--perf", "--json", str(digits), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["id"]: c for c in json.loads(proc.stdout)}
    assert checks["torch-import"]["status"] == "ok"
    assert checks["perf-gpu"]["status"] == "skip"
    dl = checks["perf-dataloader"]
    assert dl["status"] in ("ok", "warn") and "/dev/shm" in dl["detail"] and "GB/s" in dl["detail"]

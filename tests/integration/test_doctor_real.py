"""doctor on this machine: engine reachable, no GPU (skip), memlock limited (warn)."""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker
DLBOX = Path(__file__).resolve().parents[2] / ".venv/bin/dlbox"


def test_doctor_json_on_this_machine(docker_engine):
    p = subprocess.run([str(DLBOX), "doctor", "--json"], capture_output=True, text=True, timeout=60)
    rows = json.loads(p.stdout)
    c = {r["id"]: r for r in rows}
    assert c["docker.client"]["status"] == "ok"
    assert c["docker.engine"]["status"] == "ok", c["docker.engine"]
    assert c["nvidia.driver"]["status"] == "skip"
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    assert c["memlock"]["status"] == ("ok" if hard == resource.RLIM_INFINITY else "warn")
    fails = [r for r in rows if r["status"] == "fail"]
    assert p.returncode == (1 if fails else 0), (p.returncode, fails)


def test_doctor_deep_without_gpu_skips():
    p = subprocess.run([str(DLBOX), "doctor", "--json", "--deep"], capture_output=True, text=True, timeout=120)
    c = {r["id"]: r for r in json.loads(p.stdout)}
    assert c["nvidia.deep"]["status"] == "skip"

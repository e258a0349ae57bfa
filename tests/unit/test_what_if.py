"""Typed what-if: Overrides instead of a dict, flags validated as parameters, the what-if Host
built in host/, and `plan --root DIR` replaying a saved host like `doctor --root DIR`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dlbox.errors import PlanError
from dlbox.host import Host
from dlbox.host.what_if import what_if
from dlbox.plan import resolve
from dlbox.plan.model import Overrides
from dlbox.spec import load_spec

ROOTS = Path(__file__).resolve().parents[1] / "fixtures" / "roots"
DLBOX = [sys.executable, "-m", "dlbox.cli"]


def test_overrides_are_typed_and_frozen():
    with pytest.raises(TypeError):
        Overrides(no_gpus=True)  # a typo is an error, not a key nobody reads
    with pytest.raises(PlanError, match="flavor"):
        Overrides(flavor="dev")
    o = Overrides(torch="2.3.1")
    with pytest.raises(AttributeError):
        o.torch = "x"


def test_no_gpu_override_plans_for_the_cpu(tmp_path):
    (tmp_path / "dlbox.toml").write_text("")
    host = what_if(Host(), driver="550.54.14", compute_caps=["8.9"])
    spec = load_spec(tmp_path)
    assert resolve(spec, host).gpu
    cpu = resolve(spec, host, overrides=Overrides(no_gpu=True))
    assert not cpu.gpu and cpu.run.gpu_args == ()


def test_what_if_assumes_the_other_engine_can_give_the_gpu_and_leaves_a_plain_host_alone():
    assert what_if(Host()) == Host()
    h = what_if(Host(), driver="535.104.05", compute_caps=["8.6", "8.9"])
    assert h.driver.driver_version == "535.104.05" and [g.compute_cap for g in h.driver.gpus] == ["8.6", "8.9"]
    assert h.can_give_gpu


@pytest.mark.parametrize("args,message", [
    (["--driver", "535.x"], "Invalid value for '--driver'"),
    (["--compute-cap", "86"], "Invalid value for '--compute-cap'"),
    (["--flavor", "dev"], "Invalid value for '--flavor'"),
])
def test_bad_what_if_flags_are_usage_errors(tmp_path, args, message):
    p = subprocess.run([*DLBOX, "plan", str(tmp_path), *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_plan_root_replays_a_saved_host(tmp_path):
    (tmp_path / "dlbox.toml").write_text("")
    p = subprocess.run([*DLBOX, "plan", str(tmp_path), "--json", "--root", str(ROOTS / "healthy-gpu")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    plan = json.loads(p.stdout)
    assert plan["gpu"] and plan["run"]["gpu_args"] == ["--gpus", "all"]   # the root's driver and runtime
    assert any("550.54.14" in r for r in plan["reasons"])

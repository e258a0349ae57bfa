"""The shared apt step and the venv step (render/apt.py, render/venv.py): which packages give the
Python, how pip gets into the venv, and what keeps these layers the same on every machine."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from dlbox.catalog import load
from dlbox.host import Host, Limits, NetFacts
from dlbox.plan import resolve
from dlbox.plan.lock import LockRef
from dlbox.render.dockerfile import render_dockerfile
from dlbox.render.venv import SELF_CONTAINED_PIP_WHEEL
from dlbox.spec import load_spec

CAT = load()
HOST = Host(driver=None, limits=Limits(None, None), uid=1000, gid=1000, net=NetFacts())
DEBIAN = {r.python: r for r in CAT.cpu_bases if r.os.startswith("debian-")}


def _plan(tmp: Path, python: str, torch: str = "none"):
    (tmp / "dlbox.toml").write_text(f'[env]\npython = "{python}"\ntorch = "{torch}"\n')
    return resolve(load_spec(tmp), HOST)


def _step(text: str, marker: str) -> str:
    """The RUN instruction whose text holds MARKER, continuation lines joined."""
    runs = re.split(r"\n(?=RUN |FROM |ENV |COPY |# )", text)
    return next(r for r in runs if r.startswith("RUN ") and marker in r)


@pytest.mark.parametrize("python", sorted(p for p, r in DEBIAN.items() if r.os in SELF_CONTAINED_PIP_WHEEL))
def test_apt_python_venv_without_ensurepip(tmp_path, python):
    plan = _plan(tmp_path, python)
    assert plan.build.python_install.startswith("apt:") and plan.build.base_os in SELF_CONTAINED_PIP_WHEEL
    text = render_dockerfile(plan)
    apt = _step(text, "apt-get")
    wheels = ["pip", "setuptools"] if tuple(map(int, python.split("."))) < (3, 12) else ["pip"]
    assert f"--no-install-recommends python3 {' '.join(f'python3-{w}-whl' for w in wheels)} ca-certificates;" in apt
    assert "-venv" not in apt, "pythonX.Y-venv (ensurepip, distutils, lib2to3) is not needed"
    venv = _step(text, "-m venv")
    assert "python3 -m venv --without-pip /opt/venv;" in venv
    assert (f"uv pip install --offline --no-index --find-links /usr/share/python-wheels --no-deps --cache-dir /mnt/cache "
            f"--python /opt/venv/bin/python {' '.join(wheels)};") in venv, "ensurepip's own wheels, by uv, offline"
    assert "--mount=type=bind,from=dlbox/tools:" in venv, "uv comes from the tools image"


def test_a_de_vendored_distribution_pip_keeps_ensurepip(tmp_path):
    old = next((p for p, r in DEBIAN.items() if r.os not in SELF_CONTAINED_PIP_WHEEL), None)
    if old is None:
        pytest.skip("every catalogued Debian has a self-contained pip wheel")
    text = render_dockerfile(_plan(tmp_path, old))
    assert "python3 python3-venv ca-certificates;" in _step(text, "apt-get")
    venv = _step(text, "-m venv")
    assert "python3 -m venv /opt/venv;" in venv and "uv pip install" not in venv


def test_the_lock_setuptools_is_installed_once(tmp_path):
    """A torch layer that pins setuptools replaces ensurepip's: the venv is seeded with pip only."""
    from tests.unit.test_render import cpu_plan

    _, plan = cpu_plan(tmp_path)
    assert "--python /opt/venv/bin/python pip setuptools;" in _step(render_dockerfile(plan), "-m venv")
    source = plan.build.family_sources[0].kind
    locked = LockRef("dlbox-cpu.lock", "0" * 64, source, ("setuptools==84.2.1", "torch==2.13.0+cpu"), count=2)
    venv = _step(render_dockerfile(replace(plan, build=replace(plan.build, locked=locked))), "-m venv")
    assert "--python /opt/venv/bin/python pip;" in venv and "'setuptools==84.2.1'" not in venv
    assert "setuptools==84.2.1" in venv


def test_shared_layers_record_no_local_file_times(tmp_path):
    """uv's uv_cache.json holds a local wheel's ctime (tools image, apt layer): removed with its RECORD line."""
    text = render_dockerfile(_plan(tmp_path, "3.11"))
    venv = _step(text, "-m venv")
    forget = venv.index("uv_cache.json; do")
    assert venv.index("uv pip install") < forget < venv.index("touch -h -d @315532800")
    assert "sed -i '/\\/uv_cache\\.json,/d' \"${f%/*}/RECORD\"" in venv


def test_apt_lists_live_in_a_cache_not_in_layers(tmp_path):
    (tmp_path / "dlbox.toml").write_text('[env]\npython = "3.11"\ntorch = "none"\napt = ["less"]\n')
    text = render_dockerfile(resolve(load_spec(tmp_path), HOST))
    for marker in ("python3-pip-whl", "--no-install-recommends less"):
        step = _step(text, marker)
        assert "--mount=type=cache,id=dlbox-apt-lists-debian-bookworm,target=/var/lib/apt/lists,sharing=locked" in step
        assert "-o Acquire::Languages=none update" in step
        assert "rm -rf /var/lib/apt/lists" not in step and "find /var/lib/apt/lists" not in step

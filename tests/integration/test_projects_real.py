"""Projects unedited: `dlbox init` then `dlbox run -- <smallest entry point>` on the real engine.

Two sources of projects:
- tests/fixtures/lock-projects/: shapes written for these tests (a package with a C++ extension
  plus a torch.compile'd step; a src-layout pyproject package whose __init__ reads its own
  installed version);
- tests/projects/*/ (helper `projects`): each directory with a `dlbox-test.toml`
  (`entry = "python demo.py"`, `expect = "text in the output"`, `heavy = true` for the ones
  whose torch family is multi-GB; `offline = "what cannot be reached and what is tested"`,
  `lock_expect = ["text the written lock holds"]`).
Heavy ones run only with DLBOX_HEAVY=1 (CI runs the representative subset within its budget).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DLBOX = str(Path(sys.executable).with_name("dlbox"))
OWN = ROOT / "tests" / "fixtures" / "lock-projects"


def dlbox(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([DLBOX, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=dict(os.environ))


def _vendored() -> list:
    out = []
    for meta in sorted((ROOT / "tests" / "projects").glob("*/dlbox-test.toml")):
        cfg = tomllib.loads(meta.read_text())
        marks = [pytest.mark.skipif(not os.environ.get("DLBOX_HEAVY"), reason="heavy: DLBOX_HEAVY=1 runs it")] \
            if cfg.get("heavy") else []
        out.append(pytest.param(meta.parent, cfg, id=meta.parent.name, marks=marks))
    return out


def init_and_run(src: Path, tmp_path: Path, entry: list[str]) -> tuple[Path, subprocess.CompletedProcess]:
    d = tmp_path / src.name
    shutil.copytree(src, d, ignore=shutil.ignore_patterns("dlbox-test.toml", ".dlbox", "dlbox.toml", "dlbox-*.lock"))
    init = dlbox("init", str(d))
    assert init.returncode == 0, init.stdout + init.stderr
    proc = dlbox("run", "-C", str(d), "--", *entry)
    return d, proc


def test_extension_package_builds_imports_and_compiles(docker_engine, tmp_path):
    """setup.py with a CppExtension, no requirements file: init reads setup.py, the plan adds g++ and
    Python headers, the build compiles the op into /opt/dlbox/ext, demo.py imports it from the
    bind-mounted source tree and torch.compile works (g++ at run time)."""
    d, proc = init_and_run(OWN / "extpkg", tmp_path, ["python", "demo.py"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "extension: [1.0, 1.0, 1.0]" in proc.stdout
    assert "compiled: [3.0, 3.0, 3.0, 3.0]" in proc.stdout
    assert not list(d.glob("addone/*.so")), "compiled files live in the image, not in the project"
    verify = dlbox("verify", str(d), "--json")
    assert '"import torch"' in verify.stdout and '"torch.compile"' in verify.stdout, verify.stdout + verify.stderr
    assert '"status": "fail"' not in verify.stdout.split('"import torch"', 1)[1].split("}", 1)[0]


def test_pyproject_package_is_installed_editable(docker_engine, tmp_path):
    """A src-layout package whose __init__ reads importlib.metadata.version(): importable and its
    console script on PATH without `pip install -e .`; an edit shows without a rebuild."""
    d, proc = init_and_run(OWN / "pyprojpkg", tmp_path, ["tinypkg-hello"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tinypkg 0.3.1: sum=10" in proc.stdout
    cli = d / "src" / "tinypkg" / "cli.py"
    cli.write_text(cli.read_text().replace("sum=", "total="))
    again = dlbox("run", "-C", str(d), "--", "tinypkg-hello")
    assert "tinypkg 0.3.1: total=10" in again.stdout, again.stdout + again.stderr
    assert "built " not in again.stderr, "a code edit needs no rebuild"


@pytest.mark.skipif(not os.environ.get("DLBOX_HEAVY"), reason="heavy (PyPI's CUDA torch family, ~3.5 GB): DLBOX_HEAVY=1")
def test_torchvision_ops_run_with_the_family_from_one_build(docker_engine, tmp_path):
    """torch + torchvision, no pins: PyTorch's cpu index does not answer here, so the whole family
    comes from PyPI (CUDA build, runs on the CPU) instead of a local CPU torch next to a CUDA
    torchvision; nms and roi_align run, and verify says torchvision's ops are registered."""
    d, proc = init_and_run(OWN / "visionapp", tmp_path, ["python", "detect.py"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "kept [0, 2]" in proc.stdout
    verify = dlbox("verify", str(d), "--json")
    assert '"torchvision compiled ops"' in verify.stdout


@pytest.mark.parametrize("src, cfg", _vendored())
def test_vendored_project_runs_unedited(docker_engine, tmp_path, src, cfg):
    """`offline` in dlbox-test.toml says what these machines cannot reach (PyTorch's index, GitHub)
    and so what this run does not prove; `lock_expect` lines are what it proves instead, read from
    the lock the run wrote (e.g. the project's CUDA index was seen and replaced by the plan's source)."""
    import shlex

    d, proc = init_and_run(src, tmp_path, shlex.split(cfg["entry"]))
    offline = f" (offline here: {cfg['offline']})" if cfg.get("offline") else ""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + offline
    if cfg.get("expect"):
        assert cfg["expect"] in proc.stdout + proc.stderr
    lock = "".join(p.read_text() for p in d.glob("dlbox-*.lock"))
    for text in cfg.get("lock_expect", []):
        assert text in lock, f"{text!r} is not in the lock{offline}:\n{lock[:2000]}"

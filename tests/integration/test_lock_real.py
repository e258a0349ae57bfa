"""`dlbox lock` with the real uv against the real package index (PyPI answers here; PyTorch's own
index does not, which these tests rely on: the family falls back to PyPI's build and says so),
and the plan refusing a project's torch constraint before any build.

No Docker: these run in seconds. Building from the lock is covered by test_projects_real.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

DLBOX = str(Path(sys.executable).with_name("dlbox"))


def dlbox(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([DLBOX, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=dict(os.environ))


def project(tmp_path: Path, requirements: str, toml: str = "") -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    (d / "requirements.txt").write_text(requirements)
    (d / "dlbox.toml").write_text('[env]\nrequirements = "requirements.txt"\n' + toml)
    return d


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


def test_range_lock_and_up_to_date(tmp_path):
    """The issue's `torch>=2.8,<2.9` next to a local 2.13 wheel: the lock holds 2.8, with the family
    from one source; a second lock with nothing changed resolves nothing."""
    d = project(tmp_path, "torch>=2.8,<2.9\nnumpy<2.5\n")
    proc = dlbox("lock", str(d))
    assert proc.returncode == 0, proc.stderr
    text = (d / "dlbox-cpu.lock").read_text()
    assert "\ntorch==2.8.0" in text
    assert "# dlbox-inputs: " in text and "--hash=sha256:" in text
    # PyTorch's cpu index does not answer here: the plan's next source (PyPI's build) is used and named
    assert "# dlbox-source: pypi" in text or "# dlbox-source: index" in text
    again = dlbox("lock", str(d))
    assert again.returncode == 0 and "up to date" in again.stdout
    # an edited requirement makes the lock stale: build/up/lock resolve again
    (d / "requirements.txt").write_text("torch>=2.8,<2.9\nnumpy<2.4\n")
    third = dlbox("lock", str(d))
    assert "written" in third.stdout, third.stdout + third.stderr


def test_unsatisfiable_fails_fast_with_the_resolvers_words(tmp_path):
    d = project(tmp_path, "numpy<1.20\npandas>=2.2\n", 'torch = "none"\n')
    t0 = time.monotonic()
    proc = dlbox("lock", str(d))
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    no_traceback(proc)
    assert "cannot be installed together" in proc.stderr and "pandas" in proc.stderr and "numpy" in proc.stderr
    assert not (d / "dlbox-cpu.lock").exists()
    print(f"unsatisfiable set refused in {elapsed:.1f} s")  # a figure for the note, not an assertion


def test_family_conflict_refused_at_plan_time_naming_the_line(tmp_path):
    d = project(tmp_path, "torch>=2.8\ntorchvision==0.17.2\n")
    proc = dlbox("plan", str(d))
    assert proc.returncode != 0
    no_traceback(proc)
    assert "requirements.txt:" in proc.stderr


def test_the_projects_own_index_that_does_not_answer_is_named_with_its_line(tmp_path):
    # facebookresearch/dinov2's requirements.txt: --extra-index-url https://pypi.nvidia.com (no answer here)
    d = project(tmp_path, "numpy<2.5\n--extra-index-url https://pypi.nvidia.com\ncuml-cu11\n", 'torch = "none"\n')
    proc = dlbox("lock", str(d))
    assert proc.returncode != 0
    no_traceback(proc)
    assert "requirements.txt:2" in proc.stderr and "https://pypi.nvidia.com" in proc.stderr
    assert "torch family" not in proc.stderr


def test_vcs_url_that_cannot_be_fetched_names_the_line(tmp_path):
    # GitHub does not answer from these machines
    d = project(tmp_path, "numpy<2.5\ngit+https://github.com/psf/requests@v2.31.0#egg=requests\n", 'torch = "none"\n')
    proc = dlbox("lock", str(d))
    assert proc.returncode != 0
    no_traceback(proc)
    assert "requirements.txt:2" in proc.stderr or "github.com/psf/requests" in proc.stderr


def test_gpu_server_lock_from_this_cpu_machine(tmp_path):
    """A CPU machine writes the lock a driver-580 server (CUDA 13.0) builds from, beside its own."""
    d = project(tmp_path, "torch\nnumpy<2.5\n")
    assert dlbox("lock", str(d)).returncode == 0
    proc = dlbox("lock", str(d), "--driver", "580.65.06", "--compute-cap", "9.0")
    assert proc.returncode == 0, proc.stderr
    gpu_lock = next(d.glob("dlbox-cu13*.lock"))
    text = gpu_lock.read_text()
    assert "\ntorch==2.14" in text and "nvidia-cuda-runtime" in text
    assert "torch==2.13.0+cpu" in (d / "dlbox-cpu.lock").read_text()


def test_uv_project_keeps_the_versions_of_its_own_uv_lock(tmp_path):
    """A uv project's uv.lock pins are preferred (uv keeps an output file's pins): numpy stays at
    the version the project locked for this Python, not today's newest; the torch family stays the plan's."""
    d = tmp_path / "uvproj"
    d.mkdir()
    (d / "pyproject.toml").write_text('[project]\nname = "uvproj"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
                                      'dependencies = ["numpy>=1.26"]\n[tool.uv]\npackage = false\n')
    (d / "uv.lock").write_text(
        'version = 1\nrequires-python = ">=3.10"\n'
        '[[package]]\nname = "numpy"\nversion = "1.26.4"\nsource = { registry = "https://pypi.org/simple" }\n'
        'resolution-markers = ["python_full_version >= \'3.11\'"]\n'
        '[[package]]\nname = "numpy"\nversion = "1.26.0"\nsource = { registry = "https://pypi.org/simple" }\n'
        'resolution-markers = ["python_full_version < \'3.11\'"]\n'
        '[[package]]\nname = "uvproj"\nversion = "0.1"\nsource = { virtual = "." }\n')
    (d / "dlbox.toml").write_text('[env]\npython = "3.11"\ntorch = "none"\n')
    proc = dlbox("lock", str(d))
    assert proc.returncode == 0, proc.stderr
    text = (d / "dlbox-cpu.lock").read_text()
    assert "\nnumpy==1.26.4" in text and "uv.lock: the project's 1 locked versions are preferred" in text

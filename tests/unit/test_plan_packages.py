"""Plan.packages comes from what the project declares (one pip parser: dlbox.spec.declared) plus
dlbox.toml's [env] pip, so a package reached through a `-r` include or declared only in
pyproject.toml counts for every decision that reads the package set: a CUDA build dependency
(devel image, no build isolation), JupyterLab already there, system packages, and what `verify`
imports. And a file pulled in by -r/-c is an input of the image even without a lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlbox.engine.stage import stage_project
from dlbox.errors import SpecError
from dlbox.host import EngineFacts, Host, Limits
from dlbox.host.nvidia_smi import facts_from_options
from dlbox.plan import resolve
from dlbox.render.dockerfile import jupyter_args, render_dockerfile
from dlbox.spec import load_spec
from dlbox.spec.declared import declared_for
from dlbox.workflow import Project
from dlbox.workflow.verify import verify_plan

CPU = Host(driver=None, engine=EngineFacts(server_version="20.10.24", runtimes=("runc",)),
           limits=Limits(memlock_hard=None, stack_hard=None), uid=1000, gid=1000)
GPU = Host(driver=facts_from_options(nvidia_smi_text=None, driver="570.124.06", compute_caps=["9.0"]),
           engine=EngineFacts(server_version="20.10.24", runtimes=("nvidia", "runc")),
           limits=Limits(memlock_hard=None, stack_hard=None), uid=1000, gid=1000)

INCLUDE = "include"       # requirements.txt says `-r requirements/extra.txt`; the package is in there
PYPROJECT = "pyproject"   # only pyproject.toml [project] dependencies, no requirements file


def project(tmp_path: Path, shape: str, package: str, toml: str = "") -> Path:
    if shape == INCLUDE:
        (tmp_path / "requirements").mkdir()
        (tmp_path / "requirements" / "extra.txt").write_text(f"{package}\n")
        (tmp_path / "requirements.txt").write_text("numpy\n-r requirements/extra.txt\n")
        toml = '[env]\nrequirements = "requirements.txt"\n' + toml.replace("[env]\n", "")
    else:
        (tmp_path / "pyproject.toml").write_text(
            f'[project]\nname = "demo"\nversion = "0.1"\ndependencies = ["numpy", "{package}"]\n')
    (tmp_path / "dlbox.toml").write_text(toml)
    return tmp_path


def plan_of(d: Path, host: Host = CPU):
    spec = load_spec(d)
    declared = declared_for(spec)
    return spec, declared, resolve(spec, host, declared=declared)


@pytest.mark.parametrize("shape", [INCLUDE, PYPROJECT])
def test_packages_are_the_declared_set_plus_env_pip(tmp_path, shape):
    d = project(tmp_path, shape, "Mamba_SSM>=2", toml='[env]\npip = ["rich"]\n')
    _, _, plan = plan_of(d)
    assert {"numpy", "mamba-ssm"} <= set(plan.packages)
    assert plan.packages == tuple(sorted(plan.packages)) and "rich" in plan.packages


@pytest.mark.parametrize("shape", [INCLUDE, PYPROJECT])
def test_cuda_build_dependency_gets_nvcc_and_no_isolation(tmp_path, shape):
    _, _, plan = plan_of(project(tmp_path, shape, "flash-attn==2.6.3"), GPU)
    assert plan.choice.has_nvcc and "devel" in plan.choice.base_image
    assert plan.build.no_build_isolation == ("flash-attn",)
    assert any("flash-attn compiles CUDA code" in r for r in plan.reasons)


@pytest.mark.parametrize("shape", [INCLUDE, PYPROJECT])
def test_jupyterlab_already_declared_needs_no_jupyter_stage(tmp_path, shape):
    _, _, plan = plan_of(project(tmp_path, shape, "jupyterlab>=4"))
    assert jupyter_args(plan) is None


def test_jupyter_stage_when_nobody_declares_it(tmp_path):
    _, _, plan = plan_of(project(tmp_path, INCLUDE, "rich"))
    assert jupyter_args(plan)[-1] == "jupyterlab"


@pytest.mark.parametrize("shape", [INCLUDE, PYPROJECT])
def test_system_packages_from_included_and_pyproject_deps(tmp_path, shape):
    _, _, plan = plan_of(project(tmp_path, shape, "opencv-python"))
    assert {"libgl1", "libxcb1"} <= set(plan.build.apt)
    where = "requirements/extra.txt:1" if shape == INCLUDE else "pyproject.toml"
    assert any(r.startswith("apt ") and f"for opencv-python ({where}" in r for r in plan.reasons), plan.reasons


def test_system_packages_from_env_pip(tmp_path):
    (tmp_path / "dlbox.toml").write_text('[env]\npip = ["soundfile"]\n')
    _, _, plan = plan_of(tmp_path)
    assert "libsndfile1" in plan.build.apt
    assert any("for soundfile (dlbox.toml [env] pip)" in r for r in plan.reasons)


@pytest.mark.parametrize("shape", [INCLUDE, PYPROJECT])
def test_verify_imports_what_the_includes_and_pyproject_declare(tmp_path, shape):
    spec, declared, plan = plan_of(project(tmp_path, shape, "einops", toml='[env]\npip = ["rich"]\n'))
    cfg = verify_plan(Project(spec, CPU, plan, None, declared=declared))
    assert {"numpy", "einops", "rich"} <= set(cfg["deps"])


def test_bad_env_pip_line_is_one_clear_line(tmp_path):
    (tmp_path / "dlbox.toml").write_text('[env]\npip = ["numpy", "./missing-dir"]\n')
    with pytest.raises(SpecError, match=r"dlbox.toml \[env\] pip item 2: ./missing-dir: no such directory"):
        plan_of(tmp_path)


def test_an_included_file_is_an_image_input_without_a_lock(tmp_path):
    d = project(tmp_path, INCLUDE, "einops")
    _, _, plan = plan_of(d)
    assert plan.build.locked is None and plan.build.requirement_files == ("requirements.txt", "requirements/extra.txt")
    before = stage_project(plan).fingerprint
    (d / "requirements" / "extra.txt").write_text("einops==0.8.0\n")
    _, _, plan = plan_of(d)
    assert stage_project(plan).fingerprint != before, "editing an included file changes the image tag"


def test_unlocked_build_mounts_the_includes_where_the_top_file_names_them(tmp_path):
    d = project(tmp_path, INCLUDE, "einops")
    _, _, plan = plan_of(d)
    text = render_dockerfile(plan)
    assert "source=requirements.txt,target=/tmp/dlbox/requirements.txt" in text
    assert "source=requirements/extra.txt,target=/tmp/dlbox/requirements/extra.txt" in text
    assert "-r /tmp/dlbox/requirements.txt" in text

"""System packages and the compiler in the plan, from what the project declares (issue 12 scope 5)."""

from pathlib import Path

import pytest

from dlbox.catalog import load, vkey
from dlbox.catalog.pythons import choose_python, providable
from dlbox.host import EngineFacts, Host, Limits
from dlbox.plan import resolve
from dlbox.render.dockerfile import render_dockerfile
from dlbox.spec import load_spec
from dlbox.spec.declared import declared_for
from dlbox.spec.declared.catalog import system_rows

HOST = Host(driver=None, engine=EngineFacts(server_version="20.10.24", runtimes=("runc",)),
            limits=Limits(memlock_hard=None, stack_hard=None), uid=1000, gid=1000)


def plan_for(tmp_path: Path, toml: str, files: dict[str, str]):
    (tmp_path / "dlbox.toml").write_text(toml)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    spec = load_spec(tmp_path)
    return resolve(spec, HOST, declared=declared_for(spec))


def test_opencv_and_torch_compile_bring_their_packages_with_reasons(tmp_path):
    plan = plan_for(tmp_path, '[env]\nrequirements = "requirements.txt"\napt = ["htop"]\n',
                    {"requirements.txt": "opencv-python\ntorch\n",
                     "train.py": "import torch\nmodel = torch.compile(torch.nn.Linear(2, 2))\n"})
    apt = plan.build.apt
    assert apt[0] == "htop" and {"libgl1", "libxcb1", "g++"} <= set(apt)
    assert plan.build.python_dev, "Inductor's C++ includes Python.h"
    why = "\n".join(plan.reasons)
    assert "for opencv-python (requirements.txt:1)" in why and "for torch.compile (train.py:2)" in why
    assert "g++" in render_dockerfile(plan)


def test_compiler_switch(tmp_path):
    files = {"train.py": "import torch\n@torch.compile\ndef f(x):\n    return x\n"}
    off = plan_for(tmp_path, "[env]\ncompiler = false\n", files)
    assert "g++" not in off.build.apt and any("compiler = false" in w for w in off.warnings)
    on = plan_for(tmp_path, "[env]\ncompiler = true\n", {"train.py": "print(1)\n"})
    assert "g++" in on.build.apt and on.build.python_dev
    auto = plan_for(tmp_path, "", {"train.py": "print(1)\n"})
    assert "g++" not in auto.build.apt and not auto.build.python_dev


def test_git_requirement_brings_git(tmp_path):
    plan = plan_for(tmp_path, '[env]\nrequirements = "requirements.txt"\n',
                    {"requirements.txt": "clip @ git+https://github.com/openai/CLIP.git@abc\n"})
    assert "git" in plan.build.apt


def test_bad_requirements_fail_the_plan_with_the_line(tmp_path):
    from dlbox.errors import SpecError
    with pytest.raises(SpecError, match="requirements.txt:2"):
        plan_for(tmp_path, '[env]\nrequirements = "requirements.txt"\n', {"requirements.txt": "numpy\ntorch>=\n"})


def test_system_table_rows_are_sourced_and_canonical():
    rows = system_rows()
    assert rows["opencv-python"].debian and rows["@torch.compile"].debian == ("g++",)
    assert all(r.source.strip() and r.reason.strip() for r in rows.values())


def test_providable_pythons_are_every_minor_a_route_and_a_torch_have():
    """apt on a base (CPU and CUDA alike, or uv there) or uv-managed, and some torch has wheels."""
    cat = load()
    uv = {r.python for r in cat.uv_python.rows}
    torch = {p for p in uv | {r.python for r in cat.cpu_bases}
             if any(vkey(r.python_min) <= vkey(p) <= vkey(r.python_max) for r in cat.torch)}
    expect = sorted((({r.python for r in cat.cpu_bases} | uv) & ({r.python for r in cat.cuda_os} | uv)) & torch,
                    key=vkey)
    assert providable() == expect
    assert {"3.9", "3.10", "3.11", "3.12", "3.13", "3.14"} <= set(expect), "issue 12: 3.9-3.14 at least"


def test_python_outside_the_declared_range_is_a_warning_naming_the_fix(tmp_path):
    plan = plan_for(tmp_path, '[env]\npython = "3.10"\n',
                    {"pyproject.toml": '[project]\nname = "x"\nrequires-python = ">=3.11"\n'})
    assert any(f'outside the project\'s range >=3.11 (pyproject.toml:3): set [env] python = "{choose_python(">=3.11").python}"'
               in w for w in plan.warnings)
    inside = plan_for(tmp_path, '[env]\npython = "3.12"\n', {})
    assert not any("outside the project" in w for w in inside.warnings)


def test_old_torch_refusal_names_a_pair_dlbox_can_build(tmp_path):
    """issue 12: 3.8 -> 'use 3.10'; 3.10 -> 'torch 1.7 needs <= 3.9' went round in a circle. The
    Python the refusal names is one dlbox provides, and planning with it works."""
    from dlbox.errors import PlanError
    with pytest.raises(PlanError) as e:
        plan_for(tmp_path, '[env]\npython = "3.10"\ntorch = "1.7.0"\n', {})
    row = load().torch_row("1.7.0")
    fits = [p for p in providable() if vkey(row.python_min) <= vkey(p) <= vkey(row.python_max)]
    assert f'set [env] python = "{fits[-1]}"' in str(e.value)
    plan = plan_for(tmp_path, f'[env]\npython = "{fits[-1]}"\ntorch = "1.7.0"\n', {})
    assert plan.choice.python == fits[-1] and plan.choice.torch.version == "1.7.0"

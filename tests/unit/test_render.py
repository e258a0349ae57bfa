"""Rendered Dockerfiles against golden files (UPDATE_GOLDEN=1 rewrites them), and their rules."""

import os
import re
from pathlib import Path

import pytest

from dlbox.host import EngineFacts, Host, Limits, NetFacts
from dlbox.host.nvidia_smi import parse_nvidia_smi
from dlbox.host.wheels import LocalWheel
from dlbox.plan import resolve
from dlbox.render.dockerfile import render_bake, render_dockerfile, render_dockerignore
from dlbox.spec import load_spec

FIX = Path(__file__).resolve().parent.parent / "fixtures"
GOLDEN = FIX / "golden"

CPU_SPEC = """name = "golden-cpu"
[env]
python = "3.11"
apt = ["git", "libgl1"]
pip = ["einops"]
requirements = "requirements.txt"
[run]
ports = ["7860"]
command = "python app.py"
[net]
proxy = "http://alice:pw@127.0.0.1:7890"
apt_mirror = "https://mirrors.ustc.edu.cn/debian"
pip_index = "https://mirrors.ustc.edu.cn/pypi/simple"
"""

GPU_SPEC = """name = "golden-gpu"
[env]
flavor = "devel"
pip = ["flash-attn"]
[net]
apt_mirror = "https://mirrors.ustc.edu.cn/ubuntu"
"""


def _project(tmp: Path, text: str) -> Path:
    d = tmp / "proj"
    d.mkdir()
    (d / "dlbox.toml").write_text(text)
    (d / "requirements.txt").write_text("scikit-learn\n")
    return d


def cpu_plan(tmp: Path):
    wheel = LocalWheel(path="/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", name="torch",
                       version="2.13.0+cpu", python_tags=("cp311",), platform="manylinux_2_28_x86_64")
    host = Host(driver=None, limits=Limits(8 << 20, None), local_wheels=(wheel,),
                net=NetFacts(ca_bundle="/etc/ssl/certs/ca-certificates.crt", ca_bundle_from="PIP_CERT",
                             find_links=("/opt/wheels",)))
    spec = load_spec(_project(tmp, CPU_SPEC))
    return spec, resolve(spec, host)


def gpu_plan(tmp: Path):
    driver = parse_nvidia_smi((FIX / "nvidia-smi" / "h100-570.133.20.txt").read_text())
    host = Host(driver=driver, engine=EngineFacts(runtimes=("nvidia", "runc")), limits=Limits(None, None))
    spec = load_spec(_project(tmp, GPU_SPEC))
    return spec, resolve(spec, host)


def normalise(text: str, tmp: Path) -> str:
    return text.replace(str(tmp), "/TMP").replace(__import__("dlbox").__version__, "VERSION")


@pytest.mark.parametrize("name, make", [("cpu", cpu_plan), ("gpu-devel", gpu_plan)])
def test_golden_dockerfile(tmp_path, name, make):
    spec, plan = make(tmp_path)
    text = normalise(render_dockerfile(plan), tmp_path)
    golden = GOLDEN / f"Dockerfile.{name}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"{golden} is missing: run with UPDATE_GOLDEN=1 to write it, then review the diff"
    assert text == golden.read_text(), "the rendered Dockerfile changed: if on purpose, run with UPDATE_GOLDEN=1"


def test_layer_order_and_rules(tmp_path):
    spec, plan = cpu_plan(tmp_path)
    text = render_dockerfile(plan)
    assert not text.startswith("# syntax"), "a syntax line needs Docker Hub"
    steps = [text.index(s) for s in ("--no-install-recommends python3 python3-pip-whl python3-setuptools-whl ca-certificates;",
                                     "-m venv", "torch==2.13.0+cpu;", "--no-install-recommends git libgl1",
                                     "-r /tmp/dlbox/requirements.txt")]
    assert steps == sorted(steps), "Python's packages, venv, torch (shared), then project apt and dependencies"
    assert "--no-install-recommends" in text and "target=/var/lib/apt/lists,sharing=locked" in text
    assert "--mount=type=cache,id=dlbox-uv" in text and "--mount=type=secret,id=dlbox_ca" in text
    assert "uv pip install" in text and "COPY . " not in text, "code is bind-mounted, not copied"
    assert not re.search(r"^ARG\s+(HTTP|HTTPS|NO)_PROXY", text, re.M | re.I), "declared proxy ARGs land in history"
    assert "pw@" not in text and "alice:***@" in text, "the proxy password is masked in comments and labels"
    assert "mirrors.ustc.edu.cn/debian-security" in text
    assert "--index-url https://mirrors.ustc.edu.cn/pypi/simple" in text


def _shared_part(text: str) -> str:
    """The Dockerfile up to the end of the shared steps, without the per-project header comments."""
    body = text[text.index("FROM "):text.index("ENV VIRTUAL_ENV=")]
    return body


def test_shared_layers_are_the_same_text_for_every_project_with_the_same_plan_inputs(tmp_path):
    """One torch per machine: the steps before the project's own are byte-identical (BuildKit then
    reuses them), and they stamp new files with SOURCE_DATE_EPOCH (other machines get the same IDs)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, plan_a = cpu_plan(tmp_path / "a")
    other = CPU_SPEC.replace('apt = ["git", "libgl1"]', 'apt = ["ffmpeg"]').replace('pip = ["einops"]', 'pip = ["timm"]')
    spec_b = load_spec(_project(tmp_path / "b", other.replace("golden-cpu", "other")))
    host = Host(driver=None, limits=Limits(8 << 20, None), local_wheels=(LocalWheel(
        path="/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", name="torch",
        version="2.13.0+cpu", python_tags=("cp311",), platform="manylinux_2_28_x86_64"),),
        net=NetFacts(ca_bundle="/etc/ssl/certs/ca-certificates.crt", ca_bundle_from="PIP_CERT",
                     find_links=("/opt/wheels",)))
    plan_b = resolve(spec_b, host)
    a = render_dockerfile(plan_a, tools="dlbox/tools:k")
    b = render_dockerfile(plan_b, tools="dlbox/tools:k")
    assert _shared_part(a) == _shared_part(b)
    assert "ffmpeg" not in _shared_part(b) and "timm" not in _shared_part(b) and "ffmpeg" in b
    shared = _shared_part(a)
    assert shared.count("touch -h -d @315532800") == 2, "apt and venv+torch steps stamp what they create"
    assert "COPY --from=dlbox-stubs /out/ /" in shared, "engine mount stubs exist before the first RUN"
    assert ".dlbox/" not in a.replace(".dlbox/entrypoint.sh", "").replace(".dlbox/Dockerfile", ""), \
        "uv and wheels come from the tools image, not the project's build context"


def test_gpu_devel_plan_uses_an_image_with_nvcc(tmp_path):
    spec, plan = gpu_plan(tmp_path)
    assert plan.choice.has_nvcc and "devel" in plan.choice.base_image
    text = render_dockerfile(plan)
    assert f"FROM {plan.choice.base_image}" in text
    assert "rm -f /etc/apt/sources.list.d/cuda*.list" in text, "NVIDIA's apt repo is dropped where a mirror is used"


def test_bake_and_ignore(tmp_path):
    spec, plan = cpu_plan(tmp_path)
    text = render_bake(plan, env_image="dlbox/x:abc", owner="0:0", extra_labels=[("a", '"b"')])
    assert text.splitlines()[2] == "FROM dlbox/x:abc" and "COPY --chown=0:0 . /workspace" in text
    ignore = render_dockerignore(bake=True, user_ignore="data/\n")
    assert ".dlbox" in ignore and "data/" in ignore and ".git" in ignore
    assert ".dlbox" not in render_dockerignore(bake=False)

"""The lock file (dlbox lock): its inputs (from the plan and what the project declares), its file read back, and
the Dockerfile that installs exactly it. uv itself runs in tests/integration/test_lock_real.py."""

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from dlbox.host import Host, Limits
from dlbox.host.wheels import LocalWheel
from dlbox.plan import resolve
from dlbox.plan.lock import LockRef, candidates, is_pytorch_index, lock_inputs, parse, python_platform, status
from dlbox.render.dockerfile import render_dockerfile
from dlbox.spec import load_spec

CPU_WHEEL = LocalWheel(path="/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", name="torch",
                       version="2.13.0+cpu", python_tags=("cp311",), platform="manylinux_2_28_x86_64")

# uv pip compile --generate-hashes --emit-index-annotation output (trimmed), as dlbox writes it
LOCK = """# dlbox lock: the exact set `dlbox build` installs.
# dlbox-format: 1
# dlbox-inputs: abc123
# dlbox-source: pypi
# dlbox-source-index: https://pypi.org/simple
filelock==4.3.1 \\
    --hash=sha256:4c5e \\
    --hash=sha256:79e4
    # via torch
    # from https://pypi.org/simple
markupsafe==3.0.4 \\
    --hash=sha256:007e
    # via jinja2
jinja2==3.1.6 \\
    --hash=sha256:0137
    # via torch
numpy==2.4.6 \\
    --hash=sha256:aaaa
    # via
    #   -r requirements.in
    #   torchvision
    # from https://pypi.org/simple
pillow==13.0.0 \\
    --hash=sha256:bbbb
    # via torchvision
torch==2.13.0 \\
    --hash=sha256:cccc
    # via
    #   -r requirements.in
    #   -c constraints.txt
    #   torchvision
triton==3.7.1 \\
    --hash=sha256:dddd
    # via torch
torchvision==0.28.0 \\
    --hash=sha256:eeee
    # via -r requirements.in
"""


def dep(name, requirement, line, **kw):
    base = dict(name=name, requirement=requirement, origin=f"requirements.txt:{line}", specifier="", url=None,
                editable=False, group=None, vcs=False, local_version=None)
    base.update(kw)
    return SimpleNamespace(**base)


def declared(*deps, indexes=(), constraints=(), find_links=()):
    from dlbox.spec.declared import Declared

    return Declared(deps=tuple(deps), indexes=tuple(indexes), constraints=tuple(constraints),
                    find_links=tuple(find_links))


def cpu_plan(tmp_path, decl, env=""):
    (tmp_path / "dlbox.toml").write_text(f"[env]\n{env}\n")
    host = Host(driver=None, limits=Limits(None, None), local_wheels=(CPU_WHEEL,))
    return resolve(load_spec(tmp_path), host, declared=decl)


def test_parse_reads_pins_and_the_torch_closure():
    locked = parse(LOCK, "dlbox-cpu.lock")
    assert locked.source == "pypi" and locked.inputs == "abc123"
    assert locked.pins["torch"] == "torch==2.13.0"
    assert locked.via["numpy"] == ("torchvision",)
    # torch and what it needs; not numpy/pillow (torchvision's), not torchvision itself
    assert locked.torch_layer() == ("filelock==4.3.1", "jinja2==3.1.6", "markupsafe==3.0.4", "torch==2.13.0",
                                    "triton==3.7.1")


def test_inputs_pin_family_and_drop_pytorch_index(tmp_path):
    d = declared(dep("torch", "torch==2.2.2+cu121", 2, specifier="==2.2.2+cu121", local_version="cu121"),
                 dep("torchvision", "torchvision==0.17.2", 3, specifier="==0.17.2"),
                 dep("numpy", "numpy<2", 4),
                 dep("mypkg", "", 5, url=".", editable=True),
                 indexes=[SimpleNamespace(url="https://download.pytorch.org/whl/cu121", kind="extra",
                                          origin="requirements.txt:1")])
    plan = cpu_plan(tmp_path, d)
    assert plan.choice.torch.version == "2.2.2"
    first, *rest = candidates(plan, d, project_dir=tmp_path, local_wheels=(CPU_WHEEL,))
    # the plan's family pins replace the project's lines; the project's own package is not locked
    assert set(first.requirements) == {"numpy<2", "torch==2.2.2", "torchvision==0.17.*"}
    assert "torchvision==0.17.*" in first.constraints
    assert first.extra_index_urls == ("https://download.pytorch.org/whl/cpu",)
    assert any("requirements.txt:1" in n and "replaces it" in n for n in first.notes)
    # a local 2.13.0+cpu wheel is of another build than PyPI's: excluded when PyPI is the source
    pypi = next(c for c in rest if c.source.kind == "pypi")
    assert "torch!=2.13.0+cpu" in pypi.excludes and pypi.extra_index_urls == ()


def test_digest_follows_inputs(tmp_path):
    d1 = declared(dep("numpy", "numpy<2", 1))
    d2 = declared(dep("numpy", "numpy<3", 1))
    plan = cpu_plan(tmp_path, d1)
    a = lock_inputs(plan, d1, plan.build.family_sources[0], project_dir=tmp_path)
    b = lock_inputs(plan, d2, plan.build.family_sources[0], project_dir=tmp_path)
    assert a.digest() == lock_inputs(plan, d1, plan.build.family_sources[0], project_dir=tmp_path).digest()
    assert a.digest() != b.digest()


def test_status_fresh_stale_missing(tmp_path):
    d = declared(dep("numpy", "numpy<2", 1))
    plan = cpu_plan(tmp_path, d)
    options = candidates(plan, d, project_dir=tmp_path)
    lock = tmp_path / plan.build.lock
    assert status(lock, options)[0] == "missing"
    lock.write_text(LOCK.replace("abc123", options[0].digest()).replace("source: pypi", "source: find_links"))
    assert status(lock, options)[0] == "fresh"
    other = candidates(plan, declared(dep("numpy", "numpy<3", 1)), project_dir=tmp_path)
    assert status(lock, other)[0] == "stale"


def test_platform_follows_the_base_os():
    assert python_platform("debian-bookworm") == "x86_64-manylinux_2_36"
    assert python_platform("ubuntu22.04") == "x86_64-manylinux_2_35"
    assert python_platform("something-else") == "x86_64-manylinux_2_28"


def test_pytorch_index_detection():
    assert is_pytorch_index("https://download.pytorch.org/whl/cu121")
    assert is_pytorch_index("https://mirror.example.com/pytorch/whl/cu126/")
    assert not is_pytorch_index("https://pypi.org/simple")


def test_dockerfile_installs_exactly_the_lock(tmp_path):
    d = declared(dep("numpy", "numpy<2", 1))
    plan = cpu_plan(tmp_path, d)
    locked = parse(LOCK, "dlbox-cpu.lock")
    plan = replace(plan, build=replace(plan.build, locked=LockRef.of(locked)))
    text = render_dockerfile(plan)
    torch_step = text.index("--no-deps filelock==4.3.1")
    lock_step = text.index("--no-deps -r /tmp/dlbox/lock.txt")
    assert torch_step < lock_step
    assert "source=dlbox-cpu.lock,target=/tmp/dlbox/lock.txt" in text
    assert "requirements.txt" not in text.split("FROM", 1)[1]


def test_project_package_and_extension_plan(tmp_path):
    from dlbox.host import EngineFacts
    from dlbox.host.nvidia_smi import facts_from_options

    ext = SimpleNamespace(kind="cuda", name="pkg._C", origin="setup.py:9")
    pkg = SimpleNamespace(path=".", name="pkg", origin="setup.py", extensions=(ext,))
    d = SimpleNamespace(deps=(), indexes=(), constraints=(), find_links=(), local_packages=(pkg,), extensions=(ext,))
    (tmp_path / "dlbox.toml").write_text("[env]\n")
    driver = facts_from_options(nvidia_smi_text=None, driver="570.133.20", compute_caps=["8.6", "9.0"])
    host = Host(driver=driver, engine=EngineFacts(runtimes=("nvidia", "runc")), limits=Limits(None, None))
    plan = resolve(load_spec(tmp_path), host, declared=d)
    # a CUDAExtension asks for the devel image; the arch list comes from the planned GPUs
    assert plan.choice.flavor == "devel"
    assert plan.build.package.arch_list == "8.6;9.0+PTX"
    assert "g++" in plan.build.apt
    text = render_dockerfile(plan)
    assert "TORCH_CUDA_ARCH_LIST='8.6;9.0+PTX'" in text and "-e /workspace" in text
    assert "target=/workspace,rw" in text and "collect_ext.py" in text


def test_local_wheel_of_another_build_is_kept_out_of_the_install(tmp_path):
    """Seen on tests/projects/pyproject-torchvision: the lock said PyPI's torch==2.13.0, but the build
    mounted find_links and uv took the local 2.13.0+cpu wheel for it (PEP 440 ignores the local label)
    next to PyPI's CUDA torchvision: "operator torchvision::nms does not exist". The install gets
    the same exclusion the resolver had."""
    from dlbox.plan.lock import wheel_excludes
    from dlbox.plan.torch_family import Source

    pypi = Source(kind="pypi", variant="cu130", index_url=None, find_links=None, why="PyPI's default build")
    local = Source(kind="find_links", variant="cpu", index_url=None, find_links="/opt/wheels", why="the local wheel")
    assert wheel_excludes((CPU_WHEEL,), pypi) == ("torch!=2.13.0+cpu",)
    assert wheel_excludes((CPU_WHEEL,), local) == ()
    plan = cpu_plan(tmp_path, declared())
    locked = parse(LOCK, "dlbox-cpu.lock")
    text = render_dockerfile(replace(plan, build=replace(plan.build, locked=LockRef.of(
        locked, excludes=wheel_excludes((CPU_WHEEL,), pypi)))))
    torch_step = text[:text.index("--no-deps filelock==4.3.1")].rsplit("RUN", 1)[1]
    assert "printf '%s\\n' 'torch!=2.13.0+cpu' > /tmp/dlbox-constraints.txt" in torch_step
    assert "--constraint /tmp/dlbox-constraints.txt" in torch_step
    plain = render_dockerfile(replace(plan, build=replace(plan.build, locked=LockRef.of(locked))))
    assert "dlbox-constraints" not in plain


def test_old_gradio_pin_gets_the_caps_it_never_declared(tmp_path):
    """tests/projects/gradio-app (a Space on gradio 4.44.1) failed unedited: today's huggingface_hub
    1.x removed HfFolder, which gradio 4 imports; pydantic 2.11+ breaks its API info."""
    from dlbox.plan.project_pins import dependency_caps

    space = dep("gradio", "gradio==4.44.1", 3, specifier="==4.44.1", origin="README.md:3")
    caps, notes = dependency_caps((space, dep("gradio", "gradio==4.44.1", 1, specifier="==4.44.1")))
    assert caps == ["huggingface-hub<1", "pydantic<2.11"] and "README.md:3" in notes[0]
    assert dependency_caps((dep("gradio", "gradio==5.49.1", 1, specifier="==5.49.1"),)) == ([], [])
    assert dependency_caps((dep("gradio", "gradio>=4", 1, specifier=">=4"),)) == ([], []), "may resolve to 5"
    assert dependency_caps((dep("gradio", "gradio<5,>=4", 1, specifier="<5,>=4"),))[0] == caps, "an upper bound"
    inputs = lock_inputs(cpu_plan(tmp_path, declared(space)), declared(space), None, project_dir=tmp_path)
    assert "huggingface-hub<1" in inputs.constraints and any("HfFolder" in n for n in inputs.notes)


def test_uv_lock_versions_become_preferences_for_the_plans_python():
    from dlbox.plan.project_pins import uv_lock_preferences
    from dlbox.spec.declared import Declared, LockedPackage, UvLock

    reg = "registry:https://pypi.org/simple"
    lock = UvLock("uv.lock", ">=3.10", (
        LockedPackage("numpy", "2.2.6", reg, ("python_full_version < '3.11'",)),
        LockedPackage("numpy", "2.4.6", reg, ("python_full_version == '3.11.*'",)),
        LockedPackage("torch", "2.9.0", reg), LockedPackage("tqdm", "4.67.1", reg),
        LockedPackage("demo", "0.1.0", "virtual:.")))
    prefs = uv_lock_preferences(Declared(lock=lock), python="3.11", skip={"torch"})
    assert prefs == ("numpy==2.4.6", "tqdm==4.67.1")
    assert uv_lock_preferences(Declared(), python="3.11", skip=set()) == ()


def test_an_unanswering_index_is_the_projects_only_when_the_resolution_searched_it(tmp_path):
    from dlbox.engine.lockfile import _declared_index
    from dlbox.plan.lock import LockInputs
    from dlbox.spec.declared import read_declared

    (tmp_path / "requirements.txt").write_text("--extra-index-url https://pypi.nvidia.com\n"
                                               "--extra-index-url https://download.pytorch.org/whl/cpu\nnumpy\n")
    declared = read_declared(tmp_path)
    inputs = LockInputs(requirements=("numpy",), constraints=(), index_url=None,
                        extra_index_urls=("https://pypi.nvidia.com",), find_links=(), python="3.11",
                        platform="x86_64-manylinux_2_36", source=None)
    own = _declared_index(declared, inputs, "https://pypi.nvidia.com/numpy/")
    assert own is not None and str(own.origin) == "requirements.txt:1"
    # the project's PyTorch index is replaced by the plan's torch source: not the project's to blame
    assert _declared_index(declared, inputs, "https://download.pytorch.org/whl/cpu/torch/") is None

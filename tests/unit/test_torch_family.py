"""The torch family as one unit: the project's torch constraints are plan inputs, members are
pinned to their torch's series, and the family comes from one build (torch_family.json)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from dlbox.catalog import load, vkey
from dlbox.catalog.family import load_family
from dlbox.errors import PlanError
from dlbox.host import EngineFacts, Host, Limits
from dlbox.host.nvidia_smi import facts_from_options
from dlbox.host.wheels import LocalWheel
from dlbox.plan import resolve
from dlbox.plan.torch_family import asks_from_lines, family_pins, project_torch
from dlbox.spec import load_spec

FX = Path(__file__).parent.parent / "fixtures" / "nvidia-smi"
CPU_WHEEL = LocalWheel(path="/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", name="torch",
                       version="2.13.0+cpu", python_tags=("cp311",), platform="manylinux_2_28_x86_64")


def dep(req: str, where: str = "requirements.txt:3"):
    d = asks_from_lines([req], where)[0]
    return SimpleNamespace(name=d.name, specifier=d.specifier, origin=where, local_version=d.local_version, group=None)


def plan_for(tmp_path, deps, *, gpu_smi=None, env=""):
    (tmp_path / "dlbox.toml").write_text(f"[env]\n{env}\n")
    spec = load_spec(tmp_path)
    if gpu_smi:
        driver = facts_from_options(nvidia_smi_text=(FX / gpu_smi).read_text(), driver=None, compute_caps=None)
        host = Host(driver=driver, engine=EngineFacts(runtimes=("nvidia", "runc")), limits=Limits(None, None))
    else:
        host = Host(driver=None, limits=Limits(None, None), local_wheels=(CPU_WHEEL,))
    return resolve(spec, host, declared=SimpleNamespace(deps=tuple(dep(d) for d in deps)))


def test_every_catalog_torch_has_a_family_row_and_rows_have_sources():
    fam = load_family()
    for row in load().torch:
        assert fam.row(row.version) is not None, row.version
    for r in fam.rows:
        assert r.source.strip()
        assert r.torchvision is None or r.torchvision.startswith("0.")


def test_family_series_agree_with_torch_json():
    """torch.json's free-text torchvision/torchaudio columns start with the series the family table pins."""
    fam = load_family()
    for row in load().torch:
        f = fam.row(row.version)
        assert row.torchvision.startswith(f.torchvision + "."), (row.version, row.torchvision, f.torchvision)
        assert row.torchaudio.startswith(f.torchaudio + "."), (row.version, row.torchaudio, f.torchaudio)


def test_range_picks_newest_inside_it(tmp_path):
    # the case: torch>=2.8,<2.9 next to a local 2.13.0+cpu wheel: 2.8.0 cpu, not the local wheel
    plan = plan_for(tmp_path, ["torch>=2.8,<2.9"])
    assert plan.choice.torch.version == "2.8.0" and plan.choice.torch.variant == "cpu"
    assert "requirements.txt:3 torch<2.9,>=2.8" in " ".join(plan.reasons)


def test_local_version_label_is_the_variant_on_a_gpu_host(tmp_path):
    # torch==2.2.2+cu121 on an H100 with driver 570 (CUDA 12.8): the cu121 build of 2.2.2 [torch.json 2.2.2]
    plan = plan_for(tmp_path, ["torch==2.2.2+cu121"], gpu_smi="h100-570.133.20.txt")
    assert plan.choice.torch.requirement == "torch==2.2.2+cu121"
    assert any("cu121" in r for r in plan.reasons)


def test_local_version_label_on_a_cpu_host_says_so(tmp_path):
    plan = plan_for(tmp_path, ["torch==2.2.2+cu121"])
    assert plan.choice.torch.version == "2.2.2" and plan.choice.torch.variant == "cpu"
    assert any("cu121 build" in r and "CPU build" in r for r in plan.reasons)


def test_old_pin_refused_naming_a_python_that_works(tmp_path):
    # torch 1.7.0 has wheels for Python 3.6-3.9 only [torch.json 1.7.0]
    with pytest.raises(PlanError) as e:
        plan_for(tmp_path, ["torch==1.7.0"])
    assert "requirements.txt:3" in e.value.message
    # a Python that works is named when this plan can provide it; otherwise the need, and the host's best
    assert 'python = "3.9"' in e.value.fix or (
        "needs Python 3.6-3.9" in e.value.fix and "nearest torch this host runs: 2.13.0+cpu" in e.value.fix)


def test_driver_too_old_for_the_range_names_nearest(tmp_path):
    # 470 tops at CUDA 11.4 (+ 11.x minor compat): torch 2.8 has cu126+ only [torch.json 2.8.0]
    with pytest.raises(PlanError) as e:
        plan_for(tmp_path, ["torch>=2.8,<2.9"], gpu_smi="quadro-m6000-470.199.02-in-cuda11.8.txt")
    assert "requirements.txt:3 torch<2.9,>=2.8" in e.value.message or "torch>=2.8" in e.value.message
    assert "nearest torch this host runs: 2.7.1+cu118" in e.value.fix


def test_explicit_dlbox_torch_outside_project_range_refused(tmp_path):
    with pytest.raises(PlanError) as e:
        plan_for(tmp_path, ["torch>=2.8,<2.9"], env='torch = "2.2.2"')
    assert "requirements.txt:3" in e.value.message


def test_member_pin_moves_torch(tmp_path):
    # torchvision==0.17.2 belongs to torch 2.2 [torch_family.json 2.2]
    plan = plan_for(tmp_path, ["torchvision==0.17.2", "torch"])
    assert plan.choice.torch.version == "2.2.2"
    assert "torchvision==0.17.*" in plan.to_dict()["family"]


def test_torchtext_takes_torch_back_to_2_3(tmp_path):
    # torchtext ended with 0.18 for torch 2.3 (pytorch/text README); PyPI's 0.18.0 would pair with anything
    plan = plan_for(tmp_path, ["torch", "torchtext"])
    assert plan.choice.torch.version == "2.3.1"
    assert "torchtext==0.18.*" in plan.to_dict()["family"]


def test_member_without_release_for_explicit_torch_is_refused():
    with pytest.raises(PlanError) as e:
        family_pins("2.13.0", ["torchtext"])
    assert "torch 2.3" in e.value.message


def test_torchaudio_after_2_11_is_the_2_11_line():
    pins = {p.name: p.requirement for p in family_pins("2.13.0", ["torchaudio", "torchvision"])}
    assert pins == {"torch": "torch==2.13.0", "torchaudio": "torchaudio==2.11.*", "torchvision": "torchvision==0.28.*"}


def test_local_cpu_torch_without_local_torchvision_moves_the_whole_family(tmp_path):
    plan = plan_for(tmp_path, ["torch", "torchvision"])
    kinds = [(s.kind, s.variant) for s in plan.build.family_sources]
    # no torchvision+cpu wheel beside the local torch: PyTorch's cpu index, else PyPI's default (cu130) build
    assert kinds == [("index", "cpu"), ("pypi", "cu130")]


def test_local_torch_alone_stays_local(tmp_path):
    plan = plan_for(tmp_path, ["torch", "numpy"])
    assert plan.build.family_sources[0].kind == "find_links"


def test_pypi_default_only_where_the_driver_runs_it(tmp_path):
    # driver 470 plans cu118; PyPI's 2.7.1 is cu126: not a fallback on that host
    plan = plan_for(tmp_path, ["torch<2.8"], gpu_smi="quadro-m6000-470.199.02-in-cuda11.8.txt")
    assert plan.choice.torch.variant == "cu118"
    assert [s.kind for s in plan.build.family_sources] == ["index"]


def test_lock_name_follows_the_variant(tmp_path):
    assert plan_for(tmp_path, ["torch"]).build.lock == "dlbox-cpu.lock"
    assert plan_for(tmp_path, ["torch"], gpu_smi="h100-570.133.20.txt").build.lock == "dlbox-cu126.lock"


def test_family_rows_sorted_and_measured_pins_plausible():
    rows = load_family().rows
    assert [vkey(r.torch) for r in rows] == sorted(vkey(r.torch) for r in rows)
    for r in rows:
        if r.measured_torch:
            assert r.measured_torch.startswith(r.torch + ".")
            assert r.pypi_default_variant and r.pypi_default_variant.startswith("cu")


def test_project_torch_ignores_extras_and_groups():
    d = SimpleNamespace(name="torch", specifier="==1.0", origin="pyproject.toml:9", local_version=None, group="dev")
    assert project_torch([d]).asks == ()

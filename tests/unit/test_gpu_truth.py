"""Issue 13, item by item: decisions on real nvidia-smi outputs (tests/fixtures/nvidia-smi/,
sources in SOURCES.md). Every expectation is derived from the catalog rows it cites, so a
catalog correction moves the test with it instead of hiding behind a hard-coded answer."""

from pathlib import Path

import pytest

from dlbox.catalog import load, vkey
from dlbox.errors import PlanError
from dlbox.host.nvidia_smi import CAP_FROM_DRIVER, effective_cuda_max, facts_from_options, host_json, parse_nvidia_smi
from dlbox.plan.gpu import TorchRequest as R
from dlbox.plan.gpu import choose

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-smi"
CAT = load()


def smi(name: str):
    return parse_nvidia_smi((FIX / name).read_text())


def cuda_of(choice) -> str:
    return choice.torch.variant


# -- 1. a pinned torch gets the safest wheel, not the highest CUDA --------------------------------

def _closest_stable_above(version: str, cuda_max: str) -> str:
    """[torch.json VERSION]: among its stable variants newer than the driver's CUDA (same major),
    the one closest to the driver's CUDA."""
    row = CAT.torch_row(version)
    opts = [v for v in row.variants if v.cuda and v.stable is not False and v.status == "verified"
            and vkey(v.cuda) > vkey(cuda_max) and v.cuda.split(".")[0] == cuda_max.split(".")[0]]
    return min(opts, key=lambda v: vkey(v.cuda)).name


@pytest.mark.parametrize("fixture", ["rtx4070-550.40.07.txt", "a10g-535.247.01.txt", "quadro-rtx4000x2-535.129.03-with-L.txt"])
def test_pinned_torch_28_on_r535_r550_takes_the_closest_minor_compat_wheel(fixture):
    d = smi(fixture)
    c = choose(R(torch="2.8.0"), d)
    assert c.torch.variant == _closest_stable_above("2.8.0", effective_cuda_max(d)[0])
    assert c.torch.variant != "cu129"
    assert any("minor-version compatibility" in w for w in c.warnings)


def test_pinned_torch_211_on_r575_takes_the_fully_supported_cu128_and_says_why_not_cu129():
    d = smi("rtx5090-575.57.08-header.txt")
    c = choose(R(torch="2.11.0"), d)
    cu129 = CAT.torch_row("2.11.0").variant("cu129")
    assert c.torch.variant == "cu128" and vkey("12.8") <= vkey(effective_cuda_max(d)[0])
    assert any(f"cu129 also exists for torch 2.11.0 but is {cu129.status}" in r for r in c.reasons)


def test_an_unverified_or_experimental_wheel_only_when_asked_by_cuda():
    d = smi("rtx5090-575.57.08-header.txt")
    assert choose(R(torch="2.8.0", cuda="12.9"), d).torch.variant == "cu129"


# -- 2. nvcc is honoured or refused with the setting that works -----------------------------------

def test_devel_with_a_pinned_torch_whose_wheels_need_minor_compat_is_refused_with_a_torch_that_works():
    d = smi("rtx4070-550.40.07.txt")
    with pytest.raises(PlanError) as e:
        choose(R(torch="2.8.0", flavor="devel"), d)
    assert "needs nvcc" in str(e.value) and 'torch = "' in e.value.fix
    named = e.value.fix.split('torch = "')[1].split('"')[0]
    ok = choose(R(torch=named, flavor="devel"), d)
    assert ok.has_nvcc and vkey(ok.cuda) <= vkey(effective_cuda_max(d)[0])


def test_devel_on_auto_torch_gets_a_devel_image_the_driver_starts():
    d = smi("rtx4070-550.40.07.txt")
    c = choose(R(flavor="devel"), d)
    assert c.has_nvcc and "-devel-" in c.base_image and vkey(c.cuda) <= vkey("12.4")


# -- 3. Jetson and aarch64 -----------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["jetson-orin-540.4.0-cuda12.6.txt", "jetson-orin-540.4.0-cuda-na-with-L.txt",
                                     "tegrastats-agx-orin-64gb.txt", "orin-nano-header-only-540.4.0.txt"])
def test_jetson_is_refused_with_the_l4t_route(fixture):
    d = smi(fixture)
    assert d.tegra
    with pytest.raises(PlanError) as e:
        choose(R(), d)
    assert "Jetson" in str(e.value) and "l4t" in e.value.fix.lower()


def test_a_tegra_driver_is_not_mapped_by_the_desktop_branch_table():
    d = smi("jetson-orin-540.4.0-cuda12.6.txt")
    assert effective_cuda_max(d) == ("12.6", None)
    assert host_json(d)["driver"]["cuda_allowed_why"].startswith("Jetson")


@pytest.mark.parametrize("fixture", ["gh200-120gb-550.54.15-aarch64.txt", "gb10-dgx-spark-580.126.09.txt"])
def test_aarch64_gpu_hosts_are_refused_with_the_ngc_route(fixture):
    d = smi(fixture)
    assert d.arch == "aarch64"
    with pytest.raises(PlanError) as e:
        choose(R(), d)
    assert "aarch64" in str(e.value) and "nvcr.io/nvidia/pytorch" in e.value.fix


def test_aarch64_cpu_plans_still_work():
    assert choose(R(gpu=False), smi("gb10-dgx-spark-580.126.09.txt")).torch.variant == "cpu"


# -- 4. compute capability: the driver first, then a sourced name table ---------------------------

@pytest.mark.parametrize("name,cap", [
    ("NVIDIA RTX 5000 Ada Generation", "8.9"), ("NVIDIA RTX 2000 Ada Generation", "8.9"), ("TITAN X (Pascal)", "6.1"),
    ("GeForce GTX TITAN X", "5.2"), ("NVIDIA GB10", "12.1"), ("NVIDIA Thor", "11.0"), ("Orin (nvgpu)", "8.7"),
    ("NVIDIA H20", "9.0"), ("NVIDIA H200", "9.0"), ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "12.0"),
    ("Tesla K40c", "3.5"), ("GeForce GTX 780", "3.5"), ("NVIDIA A10G", "8.6"), ("NVIDIA L4", "8.9"),
    ("NVIDIA L40S", "8.9"), ("NVIDIA GeForce RTX 5090", "12.0"), ("NVIDIA A100-SXM4-80GB", "8.0"),
    ("GeForce RTX 208...", "7.5"), ("NVIDIA GeForce ...", None),
])
def test_name_table(name, cap):
    from dlbox.host.nvidia_smi import compute_cap_for_name
    got, why = compute_cap_for_name(name)
    assert got == cap
    if cap:
        row = next(r for r in CAT.gpu_names if why.startswith(f"name table [gpu_names.json {r.match}"))
        assert row.compute_cap == cap and row.source


def test_the_driver_answer_wins_over_the_name():
    d = smi("rtx4060-570.133.07.txt")  # a paste with `--query-gpu=compute_cap` output first
    assert (d.gpus[0].compute_cap, d.gpus[0].cap_from) == ("8.9", CAP_FROM_DRIVER)
    q = smi("query-csv-titanv-rtx5880.csv.txt")
    assert [(g.name, g.compute_cap, g.cap_from) for g in q.gpus] == [
        ("NVIDIA TITAN V", "7.0", CAP_FROM_DRIVER), ("NVIDIA RTX 5880 Ada Generation", "8.9", CAP_FROM_DRIVER)]


# -- 5. failed or foreign outputs are named and explained -----------------------------------------

@pytest.mark.parametrize("fixture,problem,words", [
    ("nvml-mismatch-570.124.txt", "nvml-mismatch", ["reboot", "570.124"]),
    ("nvml-mismatch-unattended-upgrade.txt", "nvml-mismatch", ["modprobe"]),
    ("nvml-mismatch-550.144-ci.txt", "nvml-mismatch", ["550.144"]),
    ("no-devices-rtx5090.txt", "no-devices", ["lspci"]),
    ("rocm-smi-rx480.txt", "amd", ["AMD"]),
    ("rocm-smi-radeon-vii.txt", "amd", ["AMD"]),
    ("rocm-smi-a-rx6800.txt", "amd", ["rocm/pytorch"]),
])
def test_failures_plan_cpu_and_say_what_to_do(fixture, problem, words):
    d = smi(fixture)
    assert d.problem == problem
    c = choose(R(), d)
    assert not c.gpu and c.torch.variant == "cpu"
    assert all(any(w in x for x in c.warnings) for w in words), c.warnings


def test_nvidia_smi_L_alone_lists_the_gpus_with_capabilities():
    d = smi("L-k80x4-rtx2080ti-windows.txt")
    assert [(g.index, g.compute_cap) for g in d.gpus] == [(0, "3.7"), (1, "3.7"), (2, "7.5"), (3, "3.7"), (4, "3.7")]
    assert smi("L-mig-a100-sxm4-80gb-x4.txt").gpus[0].mig


# -- 6. Windows tables and CSV by header ----------------------------------------------------------

@pytest.mark.parametrize("fixture,model,name", [
    ("windows-wddm-rtx3050-546.12.txt", "WDDM", "NVIDIA GeForce RTX 3050 ..."),
    ("windows-tcc-tesla-p4-538.15.txt", "TCC", "Tesla P4"),
])
def test_windows_tables_parse(fixture, model, name):
    d = smi(fixture)
    assert d.driver_model == model and [g.name for g in d.gpus] == [name]


def test_tcc_mode_warns_that_wsl_cannot_see_it():
    c = choose(R(), smi("windows-tcc-tesla-p4-538.15.txt"))
    assert any("TCC" in w for w in c.warnings)


def test_headerless_csv_from_dlbox_own_old_query_keeps_names():
    d = parse_nvidia_smi("0, NVIDIA H200, 9.0, 143771\n")
    assert [(g.index, g.name, g.compute_cap) for g in d.gpus] == [(0, "NVIDIA H200", "9.0")]


# -- 7. refusals: nearest to the pin, mixed rigs --------------------------------------------------

def test_pinned_26_on_blackwell_is_offered_the_nearest_release_with_sm120():
    first = min((r for r in CAT.torch_arch if "12.0" in r.archs), key=lambda r: vkey(r.torch_min))
    with pytest.raises(PlanError) as e:
        choose(R(torch="2.6.0"), smi("rtx5090-570.153.02.txt"))
    assert e.value.fix.startswith(f"use torch {first.torch_min}+{first.variant}")
    assert len(set(e.value.fix.split(", or "))) == len(e.value.fix.split(", or "))  # no repeats


def test_a_rig_no_wheel_covers_names_each_gpu_and_the_choice():
    # GTX 1080 (6.1) and RTX 5090 (12.0) on R570: sm_61 left the wheels when sm_120 arrived
    d = facts_from_options(nvidia_smi_text=(FIX / "rtx5090-570.153.02.txt").read_text(), driver=None,
                           compute_caps=["12.0", "6.1"])
    with pytest.raises(PlanError) as e:
        choose(R(), d)
    assert 'gpus = "device=0"' in e.value.fix and 'gpus = "device=1"' in e.value.fix
    assert "CUDA_VISIBLE_DEVICES" in e.value.fix


def test_mixed_kepler_and_turing_get_one_wheel_covering_both():
    d = facts_from_options(nvidia_smi_text=(FIX / "L-k80x4-rtx2080ti-windows.txt").read_text(),
                           driver="470.199.02", compute_caps=None)
    c = choose(R(), d)
    arch = CAT.arch_row(c.torch.version, c.torch.variant)
    assert {"3.7", "7.5"} <= set(arch.archs)


# -- 8. old drivers: the driver that unlocks a wheel, and a Python that works now -----------------

@pytest.mark.parametrize("fixture", ["titan-xp-384.66.txt", "gtx1070-396.24.txt", "tesla-k80-410.104.txt"])
def test_old_drivers_name_the_driver_that_unlocks_a_wheel(fixture):
    with pytest.raises(PlanError) as e:
        choose(R(python="3.11"), smi(fixture))
    floor = CAT.minor_floor(11).floor_linux
    assert f"driver >= {floor}" in e.value.fix or "python =" in e.value.fix


def test_r470_gets_a_wheel_through_minor_compat():
    c = choose(R(), smi("q-a100-sxm4-80gb-470.103.01.txt"))
    assert c.gpu and c.torch.variant.startswith("cu11")


# -- 9. explanations that are true ----------------------------------------------------------------

def test_forward_compat_is_named_only_where_it_applies():
    inside = smi("quadro-m6000-470.199.02-in-cuda11.7.txt")
    cuda, note = effective_cuda_max(inside)
    assert cuda == next(r.cuda_max for r in CAT.driver_branches if r.branch == 470) and "cuda-compat" in note
    assert effective_cuda_max(smi("jetson-orin-540.4.0-cuda12.6.txt"))[1] is None


def test_the_slim_base_reason_does_not_claim_the_driver_refuses_every_image():
    c = choose(R(torch="2.8.0"), smi("rtx4070-550.40.07.txt"))
    assert not any("refuses" in r for r in c.reasons)
    assert any("long-term branches" in r for r in c.reasons)


# -- 10. catalog facts ----------------------------------------------------------------------------

def test_torch_22_23_have_cp312_wheels():
    for v in ("2.2.0", "2.2.2", "2.3.1"):
        assert vkey(CAT.torch_row(v).python_max) >= vkey("3.12")
    assert choose(R(torch="2.2.2", python="3.12", gpu=False), None).torch.requirement == "torch==2.2.2+cpu"


def test_cu129_wheels_of_28_to_210_carry_ptx_for_120():
    for t in ("2.8.0", "2.9.0", "2.10.0"):
        assert CAT.arch_row(t, "cu129").ptx == "12.0"


def test_exists_and_stable_are_both_kept():
    v = CAT.torch_row("2.8.0").variant("cu129")
    assert v.status == "verified" and v.stable is False
    assert CAT.torch_row("1.7.0").variant("cu92").cuda == "9.2" and CAT.cuda_row("9.2").min_driver_linux


def test_host_json_says_where_each_fact_came_from():
    d = parse_nvidia_smi((FIX / "h200-580.159.04-gpu-lane.txt").read_text() + "\n"
                         + (FIX / "csv-h200-580.159.04-gpu-lane.csv.txt").read_text())
    h = host_json(d)
    assert h["driver"]["version"] == "580.159.04" and h["driver"]["cuda_allowed"] == "13.0"
    assert "[driver_branches.json 580]" in h["driver"]["cuda_allowed_why"]
    assert h["gpus"][0] == {"index": 0, "name": "NVIDIA H200", "compute_cap": "9.0", "compute_cap_from": CAP_FROM_DRIVER,
                            "memory_mib": 143771, "mig": False}


@pytest.mark.parametrize("fixture,wsl", [("wsl2-rtx4090-531.30.txt", True), ("wsl2-cuda-err-546.80.txt", True),
                                         ("colab-mismatch-p100-495.46-460.32.03.txt", False),
                                         ("colab-mismatch-v100-450.66-418.67.txt", False), ("h100-570.133.20.txt", False)])
def test_wsl_is_recognised_from_its_windows_driver_number(fixture, wsl):
    assert smi(fixture).wsl is wsl


def test_a_given_l4t_driver_is_a_jetson_not_the_r535_desktop_branch():
    d = facts_from_options(nvidia_smi_text=None, driver="540.4.0", compute_caps=None)
    assert d.tegra and d.cuda_max is None
    with pytest.raises(PlanError) as e:
        choose(R(), d)
    assert "Jetson" in str(e.value)


def test_a_gpu_list_without_a_driver_asks_for_one():
    c = choose(R(), smi("L-titanv-rtx5880ada.txt"))
    assert not c.gpu and any("--driver" in w for w in c.warnings)


def test_mig_mode_is_said():
    c = choose(R(), smi("mig-a100-80g-truncated-520.61.05.txt"))
    assert any("MIG mode is on for GPU 0, 1" in w for w in c.warnings)

"""The independent check of issue 13 (session 3): real outputs dlbox had not seen
(tests/fixtures/nvidia-smi/, section "Collected by the independent check" of SOURCES.md), the
shapes that were answered wrong before, each with the catalog row its expectation comes from."""

from pathlib import Path

import pytest

from dlbox.catalog import load, vkey
from dlbox.errors import PlanError
from dlbox.host.nvidia_smi import PROBLEMS, effective_cuda_max, host_json, parse_nvidia_smi
from dlbox.plan.gpu import TorchRequest as R
from dlbox.plan.gpu import choose

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-smi"
CAT = load()


def smi(name: str):
    return parse_nvidia_smi((FIX / name).read_text())


def name_row(match: str):
    return next(r for r in CAT.gpu_names if r.match == match)


# -- parsing: (fixture, driver, [(name, gpu_names.json row that gives its capability)], wsl, model)

PARSE = [
    # Windows tables: process rows end in "N/A |" like GPU rows and must not become GPUs
    ("wsl-nvidia-smi-exe-rtx2070-cut-name-460.15.txt", "460.15", [("GeForce RTX 207...", "RTX 20[6-8]")], False, "WDDM"),
    # a name cut inside the model number still names its family
    ("windows-wddm-rtx3060-cut-name-461.79.txt", "461.79", [("GeForce RTX 306...", "RTX 30[5-9]")], False, "WDDM"),
    # a reply quoted with "> "
    ("windows-wddm-gtx1080ti-531.14-quoted.txt", "531.14", [("NVIDIA GeForce GTX 1080 Ti", "GTX 10[5-8]")], False, "WDDM"),
    ("wsl2-gtx1650-cut-name-537.13.txt", "537.13", [("NVIDIA GeForce GTX 1650 ...", "GTX 16[5-6]")], True, None),
    # nvidia-smi -q -x
    ("xml-rtx4090-535.86.05.txt", "535.86.05", [("NVIDIA GeForce RTX 4090", "RTX 40[5-9]")], False, None),
    # Maxwell laptop parts (5.0, not the desktop 5.2)
    ("q-quadro-m1000m-375.82.txt", "375.82", [("Quadro M1000M", "Quadro M[0-9]{3,4}M")], False, None),
    ("windows-wddm-geforce840m-369.30.txt", "369.30", [("GeForce 840M", "(?:GeForce )?(?:8[34]0M|9[34]0MX?)")],
     False, "WDDM"),
    # "NVIDIA-SMI 5.325.15" with Driver 325.15 is R325's numbering, not WSL
    ("gtx680x3-325.15-smi-5.325.txt", "325.15", [("GeForce GTX 680", "GTX 6[5-8]0")] * 3, False, None),
    # "GPU 0: NVIDIA Thor" without its UUID
    ("thor-595.78-abridged.txt", "595.78", [("NVIDIA Thor", "Thor")], False, None),
    ("vgpu-guest-smi-510.85.02-driver-510.85.03.txt", "510.85.03", [("NVIDIA GeForce ...", None)], False, None),
    ("windows-q-gtx1080ti-442.92-wddm.txt", "442.92", [("GeForce GTX 1080 Ti", "GTX 10[5-8]")], False, "WDDM"),
    ("L-cut-uuid-and-xml-gtx1660ti-430.64.txt", "430.64", [("GeForce GTX 1660 Ti", "GTX 16[5-6]")], False, None),
    # a web page that collapsed the table's spacing
    ("blog-collapsed-spaces-v100x4-410.48.txt", "410.48", [("Tesla V100-PCIE...", "V100")] * 3, False, None),
    ("collect-env-gpu-list-rtx2080ti-gtx1080ti.txt", None,
     [("GeForce RTX 2080 Ti", "RTX 20[6-8]"), ("GeForce GTX 1080 Ti", "GTX 10[5-8]")], False, None),
]


@pytest.mark.parametrize("fixture,driver,gpus,wsl,model", PARSE)
def test_real_outputs_parse_to_the_gpus_they_show(fixture, driver, gpus, wsl, model):
    d = smi(fixture)
    assert d.driver_version == driver
    assert [g.name for g in d.gpus] == [n for n, _ in gpus]
    assert [g.compute_cap for g in d.gpus] == [name_row(m).compute_cap if m else None for _, m in gpus]
    assert d.wsl is wsl and d.driver_model == model


def test_memory_in_mb_of_r3xx_tables_is_read():
    assert [g.memory_mib for g in smi("gtx680x3-325.15-smi-5.325.txt").gpus][:2] == [4095, 4095]


def test_xml_output_gives_its_cuda_version():
    d = smi("xml-rtx4090-535.86.05.txt")
    assert d.cuda_max == "12.2" and effective_cuda_max(d)[0] == "12.2"


# -- failures nvidia-smi prints: recognised, explained, and a CPU plan that says what to do

@pytest.mark.parametrize("fixture,problem", [
    ("nvml-unknown-error-in-container.txt", "nvml-unknown"),
    ("no-libnvidia-ml.txt", "no-nvml-lib"),
    ("gpu-lost.txt", "gpu-lost"),
    ("device-handle-unknown-error-tesla-p4.txt", "gpu-lost"),
    ("no-driver-after-unattended-upgrade.txt", "no-driver"),
    ("rocm-smi-mi300x-partitions.txt", "amd"),
])
def test_failed_and_foreign_outputs_are_named_and_explained(fixture, problem):
    d = smi(fixture)
    assert d.problem == problem and not d.gpus and d.driver_version is None
    assert host_json(d)["problem"]["id"] == problem
    c = choose(R(), d)
    cause, fix = PROBLEMS[problem]
    assert not c.gpu and any(cause in w and fix in w for w in c.warnings)


def test_a_header_before_the_nvml_error_still_plans_that_driver():
    d = smi("nvml-unknown-error-after-daemon-reload-510.68.02.txt")
    assert d.problem == "nvml-unknown" and d.driver_version == "510.68.02"
    c = choose(R(), d)
    assert c.gpu and any(PROBLEMS["nvml-unknown"][1] in w for w in c.warnings)


# -- decisions

@pytest.mark.parametrize("fixture", ["q-quadro-m1000m-375.82.txt", "windows-wddm-geforce840m-369.30.txt"])
def test_drivers_older_than_the_catalog_are_refused_with_the_driver_that_unlocks_a_wheel(fixture):
    """[driver_branches.json 384] is the oldest branch; [minor_compat.json 11] floor unlocks cu118,
    whose kernels [torch_arch.json cu118] cover Maxwell's 5.0."""
    oldest = min(CAT.driver_branches, key=lambda r: r.branch)
    with pytest.raises(PlanError) as e:
        choose(R(), smi(fixture))
    assert f"older than R{oldest.branch}" in str(e.value)
    d = smi(fixture)
    floor = CAT.minor_floor(11).floor_windows if d.driver_model else CAT.minor_floor(11).floor_linux
    assert f"a driver >= {floor} unlocks torch" in e.value.fix


def test_kepler_on_an_old_driver_is_told_no_wheel_has_its_kernels():
    with pytest.raises(PlanError) as e:
        choose(R(), smi("gtx680x3-325.15-smi-5.325.txt"))
    assert "compute capability 3.0" in e.value.fix


def test_a_windows_driver_below_the_windows_minor_compat_floor_gets_a_fully_supported_wheel():
    """526.47 is a Windows (WDDM) driver: CUDA 12.x minor-version compatibility needs >= 527.41 there
    [minor_compat.json 12], so only wheels whose CUDA <= 12.0 [driver_branches.json 525] qualify."""
    d = smi("windows-wddm-name-cut-526.47.txt")
    assert vkey(d.driver_version) < vkey(CAT.minor_floor(12).floor_windows)
    c = choose(R(), d)
    assert vkey(c.cuda) <= vkey(effective_cuda_max(d)[0])


def test_windows_tables_with_process_rows_plan_for_the_one_gpu():
    c = choose(R(), smi("wsl-nvidia-smi-exe-rtx2070-cut-name-460.15.txt"))
    assert not any("compute capability of GPU" in w for w in c.warnings)


@pytest.mark.parametrize("fixture", ["thor-595.78-abridged.txt", "thor-redacted-driver-cuda13.0.txt"])
def test_thor_is_refused_as_a_jetson_without_calling_its_driver_l4t(fixture):
    with pytest.raises(PlanError) as e:
        choose(R(), smi(fixture))
    assert "Jetson" in str(e.value) and "L4T driver" not in str(e.value) and "tegrastats" not in str(e.value)
    assert "l4t" in e.value.fix.lower()


# -- advice: the nearest setting that works, in the user's own terms

def _variant_driver(version: str, variant: str) -> str:
    """[cuda_driver.json] / [minor_compat.json]: the lowest driver that runs torch VERSION+VARIANT."""
    from dlbox.plan.gpu_rules import driver_for
    return driver_for(CAT, CAT.torch_row(version).variant(variant).cuda)


def test_a_pinned_torch_too_new_for_the_driver_is_offered_the_nearest_torch_on_the_same_python():
    """R470 (CUDA 11.4, [driver_branches.json 470]) runs cu118 through minor compatibility, so the pin
    of 2.14.1 is answered with the newest torch that has cu118 for Python 3.11, not a Python change."""
    d = smi("quadro-m6000-470.199.02-in-cuda11.8.txt")
    with pytest.raises(PlanError) as e:
        choose(R(torch="2.14.1"), d)
    best = choose(R(), d).torch.version
    assert f'torch = "{best}" gives torch {best}+cu118' in e.value.fix and 'python = "' not in e.value.fix


def test_a_cuda_pin_the_driver_cannot_run_is_offered_cuda_auto():
    with pytest.raises(PlanError) as e:
        choose(R(cuda="12.1"), smi("quadro-m6000-470.199.02-in-cuda11.8.txt"))
    assert 'cuda = "auto" gives torch' in e.value.fix


def test_a_pinned_torch_without_kernels_for_blackwell_is_also_told_the_driver_for_its_own_variant():
    """RTX 5090 (12.0) on R570: torch 2.14.1 ships cu126 (no sm_120) and cu130 (needs R580)."""
    with pytest.raises(PlanError) as e:
        choose(R(torch="2.14.1"), smi("rtx5090-570.153.02.txt"))
    assert f"upgrade the driver to >= {_variant_driver('2.14.1', 'cu130')} for torch 2.14.1+cu130" in e.value.fix
    # the nearest releases first, the newest patch of a minor before its older one
    assert "2.9.1+cu128" in e.value.fix and "2.9.0+cu128" not in e.value.fix


def test_an_old_pin_across_a_major_version_is_answered_with_the_release_just_below_it():
    """R450.57 is below the 11.x minor-compat floor: torch 2.0.1 has no wheel; the nearest release that
    runs (Python 3.10, cu102) is 1.12.1, the last 1.x, not 1.11.0."""
    with pytest.raises(PlanError) as e:
        choose(R(torch="2.0.1"), smi("old-titan-xp-450.57.txt"))
    assert 'python = "3.10" gives torch 1.12.1+cu102' in e.value.fix


def test_a_cuda_pin_without_kernels_for_the_gpu_names_the_nearest_cuda_to_ask_for():
    """B200 (10.0): cu121-cu126 wheels have no sm_100 [torch_arch.json]; cu128 is the nearest CUDA to
    the pin whose wheels do (2.8-2.11 cu128 list 10.0)."""
    with pytest.raises(PlanError) as e:
        choose(R(cuda="12.1"), smi("b200x2-580.95.05.txt"))
    assert e.value.fix.startswith('use torch 2.11.0+cu128 (cuda = "12.8")')


def test_a_cuda_pin_too_old_for_hopper_is_offered_the_nearest_cuda_with_sm90():
    """H100 (9.0): cu117 lists up to 8.6, cu118 has 9.0 [torch_arch.json]; newest torch with cu118 first."""
    with pytest.raises(PlanError) as e:
        choose(R(cuda="11.7"), smi("h100-570.133.20.txt"))
    assert e.value.fix.startswith('use torch 2.7.1+cu118 (cuda = "11.8")')


def test_a_two_part_torch_pin_is_its_zero_release():
    """PEP 440: ==2.5 is 2.5.0 [torch.json 2.5.0]."""
    assert choose(R(torch="2.5"), smi("h100-570.133.20.txt")).torch.version == "2.5.0"


def test_a_torch_pin_the_catalog_does_not_know_is_told_the_nearest_it_does():
    with pytest.raises(PlanError) as e:
        choose(R(torch="2.99.0"), smi("h100-570.133.20.txt"))
    newest = max((r.version for r in CAT.torch), key=vkey)
    assert f"the nearest catalogued releases for Python 3.11: {newest}" in e.value.fix


def test_devel_on_r470_names_the_driver_that_starts_a_devel_image():
    """No devel image of a torch CUDA <= 11.4 is catalogued; the lowest driver that starts one is
    [cuda_driver.json 11.7]'s (torch 2.0.1+cu117)."""
    with pytest.raises(PlanError) as e:
        choose(R(flavor="devel"), smi("quadro-m6000-470.199.02-in-cuda11.8.txt"))
    assert f"a driver >= {CAT.cuda_row('11.7').min_driver_linux} starts nvidia/cuda:11.7" in e.value.fix


@pytest.mark.parametrize("pins", [{}, {"python": "3.9"}, {"torch": "2.6.0"}])
def test_kepler_35_is_told_no_wheel_has_its_kernels_not_to_upgrade_the_driver(pins):
    """No verified variant in [torch_arch.json] covers 3.5 (GTX 780): a newer driver cannot help."""
    with pytest.raises(PlanError) as e:
        choose(R(**pins), smi("q-gtx780-450.66.txt"))
    assert "compute capability 3.5 on any driver" in e.value.fix and "upgrade the driver" not in e.value.fix


def test_a_cuda_pin_names_the_minor_compat_driver_first():
    """cu128 runs from the 12.x floor [minor_compat.json 12]; full support from [cuda_driver.json 12.8]."""
    with pytest.raises(PlanError) as e:
        choose(R(cuda="12.8"), smi("a100-sxm-truncated-515.65.01.txt"))
    assert (f"driver >= {CAT.minor_floor(12).floor_linux} (minor-version compatibility; full CUDA 12.8 from "
            f"{CAT.cuda_row('12.8').min_driver_linux})") in e.value.fix


def test_a_header_without_gpu_rows_says_the_kernels_were_not_checked():
    """An RTX 5090 paste cut after its R575 header: nothing tells dlbox the GPU is sm_120, so the plan
    must not claim 'these GPUs can run' it."""
    c = choose(R(), smi("rtx5090-575.57.08-header.txt"))
    assert any("lists no GPU" in w and "--compute-cap" in w for w in c.warnings)
    assert not any("these GPUs can run" in r for r in c.reasons)


def test_blackwell_on_a_python_no_blackwell_wheel_supports_is_offered_the_nearest_python():
    """Python 3.8 ends at torch 2.4.1 [torch.json 2.4.1], which has no sm_120 [torch_arch.json]; a newer
    driver cannot help, a newer Python can."""
    with pytest.raises(PlanError) as e:
        choose(R(python="3.8"), smi("rtx5090-570.153.02.txt"))
    assert 'python = "3.9" gives torch' in e.value.fix and "upgrade the driver" not in e.value.fix
    named = e.value.fix.split('python = "3.9" gives torch ')[1].split("+")[0]
    assert choose(R(python="3.9", torch=named), smi("rtx5090-570.153.02.txt")).gpu


def test_a_mixed_rig_no_wheel_covers_says_what_each_wheel_lacks():
    """Pascal 6.1 beside Blackwell 12.0 on R580 [driver_branches.json 580]: torch 2.14.1's cu126 has no
    sm_120, its cu13x wheels no sm_61 [torch_arch.json 2.12.0-2.14.1]."""
    from dlbox.host.nvidia_smi import facts_from_options
    d = facts_from_options(nvidia_smi_text=(FIX / "b200x2-580.95.05.txt").read_text(), driver=None,
                           compute_caps=["6.1", "12.0"])
    with pytest.raises(PlanError) as e:
        choose(R(), d)
    assert "every GPU here (compute capability 6.1, 12.0)" in str(e.value) and "+cu126 lacks 12.0" in str(e.value)
    assert 'gpus = "device=0"' in e.value.fix and 'gpus = "device=1"' in e.value.fix


def test_windows_drivers_are_told_windows_driver_numbers():
    """A Windows (WDDM) driver is numbered differently: cu118 runs from [minor_compat.json 11]
    floor_windows, full CUDA 11.8 from [cuda_driver.json 11.8] min_driver_windows."""
    with pytest.raises(PlanError) as e:
        choose(R(), smi("windows-q-gtx1080ti-442.92-wddm.txt"))
    assert (f"a driver >= {CAT.minor_floor(11).floor_windows} unlocks torch 2.7.1+cu118 (minor-version compatibility; "
            f"full CUDA 11.8 from {CAT.cuda_row('11.8').min_driver_windows})") in e.value.fix


@pytest.mark.parametrize("fixture,cap_from", [
    ("csv-noheader-name-first-h200-580.159.04-gpu-lane.csv.txt", "nvidia-smi --query-gpu=compute_cap"),
    ("csv-noheader-nounits-index-first-h200-580.159.04-gpu-lane.csv.txt", "name table [gpu_names.json H200]"),
    ("csv-driver-first-h200-580.159.04-gpu-lane.csv.txt", "nvidia-smi --query-gpu=compute_cap"),
    ("xml-h200-580.159.04-gpu-lane.txt", "name table [gpu_names.json H200]"),
])
def test_query_outputs_recorded_on_a_real_h200_parse_in_any_column_order(fixture, cap_from):
    d = smi(fixture)
    assert d.driver_version == "580.159.04"
    assert [(g.index, g.name, g.compute_cap, g.cap_from) for g in d.gpus] == [(0, "NVIDIA H200", "9.0", cap_from)]


def test_a_headerless_line_of_words_is_not_a_gpu():
    assert not parse_nvidia_smi("hello, world\nfoo, bar\n").gpus


def test_devel_with_a_pinned_torch_names_the_driver_that_starts_its_own_devel_image():
    """torch 2.8.0's lowest CUDA is 12.6 [torch.json 2.8.0]; a devel image needs full support,
    [cuda_driver.json 12.6] — not the minor-compat floor, which runs the wheel but not the image."""
    with pytest.raises(PlanError) as e:
        choose(R(torch="2.8.0", flavor="devel"), smi("mig-a100-80g-truncated-520.61.05.txt"))
    assert "needs nvcc" in str(e.value)
    assert f"a driver >= {CAT.cuda_row('12.6').min_driver_linux} starts nvidia/cuda:12.6" in e.value.fix
    assert "for torch 2.8.0+cu126" in e.value.fix


def test_devel_with_a_cuda_pin_the_driver_cannot_start_drops_the_pin_in_its_advice():
    with pytest.raises(PlanError) as e:
        choose(R(cuda="12.4", flavor="devel"), smi("a10g-535.247.01.txt"))
    assert e.value.fix.startswith('cuda = "auto", torch = "')
    assert f"a driver >= {CAT.cuda_row('12.4').min_driver_linux} starts nvidia/cuda:12.4" in e.value.fix


def test_a_pinned_torch_without_kernels_for_the_gpu_is_not_answered_with_a_driver_for_it():
    """K80 (3.7): torch 2.11.0's wheels start at 5.0 [torch_arch.json 2.9.0-2.11.0 cu126], so no driver
    makes the pin run; the driver that unlocks a wheel with sm_37 (cu118) is named instead."""
    with pytest.raises(PlanError) as e:
        choose(R(torch="2.11.0"), smi("q-tesla-k80-418.40.04.txt"))
    assert "no wheel of it has kernels for compute capability 3.7" in str(e.value)
    assert "for cu126" not in e.value.fix
    assert f"a driver >= {CAT.minor_floor(11).floor_linux} unlocks torch 2.7.1+cu118" in e.value.fix


def test_a_cuda_pin_whose_wheels_lack_the_gpu_kernels_is_not_answered_with_a_driver_for_it():
    """K80 (3.7): no cu126 wheel lists sm_37 [torch_arch.json], so no driver makes cuda = "12.6" run."""
    with pytest.raises(PlanError) as e:
        choose(R(cuda="12.6"), smi("q-tesla-k80-418.40.04.txt"))
    assert "no torch wheel for CUDA 12.6 has kernels for compute capability 3.7" in str(e.value)
    assert "for CUDA 12.6" not in e.value.fix


H100_MORE = Path(__file__).resolve().parents[1] / "fixtures" / "gpu-lane" / "h100-580.159.04-2026-11-26" / "more"


@pytest.mark.parametrize("fixture", ["nvidia-smi--version.txt", "proc-driver-version.txt"])
def test_version_only_outputs_recorded_on_the_h100_give_the_driver(fixture):
    """`nvidia-smi --version` ("DRIVER version : …") and /proc/driver/nvidia/version ("NVRM version: …
    Kernel Module for x86_64  580.159.04"); the CUDA ceiling then comes from [driver_branches.json 580]."""
    d = parse_nvidia_smi((H100_MORE / fixture).read_text())
    assert d.driver_version == "580.159.04" and effective_cuda_max(d)[0] == "13.0"


def test_rocm_smi_driver_version_is_not_an_nvidia_driver():
    d = smi("rocm-smi-a-rx6800.txt")
    assert d.problem == "amd" and d.driver_version is None


@pytest.mark.parametrize("name,row", [
    ("Quadro T2000", "T(?:500|1200|2000)(?![0-9])"), ("NVIDIA T1200 Laptop GPU", "T(?:500|1200|2000)(?![0-9])"),
    ("Quadro M1200", "Quadro M(?:1200|520)(?![0-9M])"), ("Quadro M2200", "Quadro M(?:2200|620)(?![0-9M])"),
    ("Quadro M1000M", "Quadro M[0-9]{3,4}M"), ("GeForce 940MX", "(?:GeForce )?(?:8[34]0M|9[34]0MX?)"),
])
def test_name_table_rows_added_from_the_cuda_gpus_page(name, row):
    from dlbox.host.nvidia_smi import compute_cap_for_name
    cap, why = compute_cap_for_name(name)
    assert cap == name_row(row).compute_cap and row in why


def test_a_name_row_whose_sources_disagree_is_unverified_and_warned():
    from dlbox.host.nvidia_smi import compute_cap_for_name
    cap, why = compute_cap_for_name("Quadro K2200M")
    assert "unverified" in why


def test_an_x86_paste_that_mentions_arm64_is_not_an_aarch64_host():
    """`docker buildx ls` in a paste lists linux/arm64 on an x86_64 host; the H100 must still be planned."""
    text = (FIX / "h100-570.133.20.txt").read_text() + "\nPlatforms: linux/amd64, linux/arm64\n"
    assert parse_nvidia_smi(text).arch is None and choose(R(), parse_nvidia_smi(text)).gpu


@pytest.mark.parametrize("fixture", ["xml-h200-580.159.04-gpu-lane.txt", "q-h200-580.159.04-gpu-lane.txt"])
def test_q_and_xml_reports_give_the_gpu_memory(fixture):
    assert [g.memory_mib for g in smi(fixture).gpus] == [143771]


@pytest.mark.parametrize("fixture", ["vgpu-host-quadro-p400-460.32.04-cuda-na.txt", "cuda-na-rtx5070-575.64.03.txt"])
def test_cuda_version_na_is_said_not_passed_over(fixture):
    """A vGPU host driver (vgpu_unlock#30) prints CUDA Version N/A: the branch's CUDA
    [driver_branches.json] is only an assumption there, and the plan says so."""
    d = smi(fixture)
    assert d.cuda_na and any("CUDA Version N/A" in w for w in choose(R(), d).warnings)

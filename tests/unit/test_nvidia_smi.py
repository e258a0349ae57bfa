"""Every real nvidia-smi output in tests/fixtures/nvidia-smi parses (origins in SOURCES.md)."""

from pathlib import Path

import pytest

from dlbox.errors import DlboxError
from dlbox.host.nvidia_smi import cuda_max_for_driver, effective_cuda_max, facts_from_options, parse_nvidia_smi

FX = Path(__file__).parent.parent / "fixtures" / "nvidia-smi"


def fx(name):
    return parse_nvidia_smi((FX / name).read_text())


@pytest.mark.parametrize("name,driver,cuda,gpus", [
    ("wsl2-rtx4090-531.30.txt", "531.30", "12.1", [("NVIDIA GeForce RTX 4090", "8.9", 24564)]),
    ("quadro-m6000-470.199.02-in-cuda11.7.txt", "470.199.02", "11.7", [("Quadro M6000", "5.2", 12210)]),
    ("r610-kmd-umd-gtx1650-610.57.04.txt", "610.57.04", "13.3", [("NVIDIA GeForce GTX 1650", "7.5", 4096)]),
    ("cuda-na-rtx5070-575.64.03.txt", "575.64.03", None, [("NVIDIA GeForce RTX 5070", "12.0", 12227)]),
    ("colab-mismatch-p100-495.46-460.32.03.txt", "460.32.03", "11.2", [("Tesla P100-PCIE...", "6.0", 16280)]),
    ("colab-mismatch-v100-450.66-418.67.txt", "418.67", "10.1", [("Tesla V100-SXM2...", "7.0", 16130)]),
    ("driver-565-cuda12.7-rtx2080.txt", "565.57.01", "12.7", [("NVIDIA GeForce RTX 2080 ...", "7.5", 8192)]),
    ("multi-gpu-rtx3080-rtx3060-565.57.01.txt", "565.57.01", "12.7",
     [("NVIDIA GeForce RTX 3080", "8.6", 10240), ("NVIDIA GeForce RTX 3060", "8.6", 12288)]),
    ("multi-gpu-a100-580.126.09.txt", "580.126.09", "13.0",
     [("NVIDIA A100-SXM4-40GB", "8.0", 40960)] * 2),
    ("h100-570.133.20.txt", "570.133.20", "12.8", [("NVIDIA H100 80GB HBM3", "9.0", 81559)]),
    ("rtx5090-570.153.02.txt", "570.153.02", "12.8", [("NVIDIA GeForce RTX 5090", "12.0", 32607)]),
    ("gtx960-580.82.09.txt", "580.82.09", "13.0", [("NVIDIA GeForce GTX 960", "5.2", 2048)]),
    ("old-titan-xp-450.57.txt", "450.57", "11.0", [("TITAN Xp", "6.1", 12196)]),
    ("query-csv-titanv-rtx5880.csv.txt", "570.86.15", None,
     [("NVIDIA TITAN V", "7.0", None), ("NVIDIA RTX 5880 Ada Generation", "8.9", None)]),
    ("query-q-tesla-t4-460.32.03.txt", "460.32.03", "11.2", [("Tesla T4", "7.5", None)]),
])
def test_fixture(name, driver, cuda, gpus):
    f = fx(name)
    assert (f.driver_version, f.cuda_max) == (driver, cuda)
    assert [(g.name, g.compute_cap, g.memory_mib) for g in f.gpus] == gpus
    assert [g.index for g in f.gpus] == list(range(len(gpus)))


def test_csv_without_header_in_documented_order():
    # same values as the triton fixture, in the documented query order, --format=csv,noheader
    f = parse_nvidia_smi("NVIDIA TITAN V, 570.86.15, 7.0, 12288 MiB\nNVIDIA RTX 5880 Ada Generation, 570.86.15, 8.9, 49140 MiB\n")
    assert f.driver_version == "570.86.15"
    assert [(g.compute_cap, g.memory_mib) for g in f.gpus] == [("7.0", 12288), ("8.9", 49140)]


@pytest.mark.parametrize("text", ["hello, not nvidia-smi\n", "a, b\nc, d\n", "0, NVIDIA A100, eight, 40960\n"])
def test_text_that_only_looks_like_csv_is_no_gpu(text):
    facts = parse_nvidia_smi(text)
    assert facts.driver_version is None and not facts.gpus


def test_csv_with_units_header():
    f = parse_nvidia_smi("name, driver_version, compute_cap, memory.total [MiB]\nNVIDIA H100 80GB HBM3, 570.133.20, 9.0, 81559 MiB\n")
    assert f.gpus[0].compute_cap == "9.0" and f.gpus[0].memory_mib == 81559


@pytest.mark.parametrize("driver,cuda", [
    ("565.57.01", "12.7"),  # R565 reports 12.7 though no 12.7 toolkit exists (compat.md D1)
    ("531.30", "12.1"), ("551.78", "12.4"), ("470.199.02", "11.4"), ("535.104.05", "12.2"),
    ("610.43.02", "13.3"), ("615.71.09", "13.4"), ("580.65.06", "13.0"), ("390.77", "9.1"), ("367.48", None),
])
def test_cuda_max_for_driver(driver, cuda):
    assert cuda_max_for_driver(driver) == cuda


def test_na_is_derived_by_effective_cuda_max():
    assert effective_cuda_max(fx("cuda-na-rtx5070-575.64.03.txt")) == ("12.9", None)


def test_forward_compat_report_is_capped_to_branch():
    cuda, note = effective_cuda_max(fx("quadro-m6000-470.199.02-in-cuda11.8.txt"))
    assert cuda == "11.4" and "forward" in note


def test_facts_from_options():
    f = facts_from_options(nvidia_smi_text=None, driver="470.199.02", compute_caps=["8.6", "7.5"], wsl=True)
    assert (f.driver_version, f.cuda_max, f.wsl, f.source) == ("470.199.02", "11.4", True, "--driver")
    assert [g.compute_cap for g in f.gpus] == ["8.6", "7.5"]
    f = facts_from_options(nvidia_smi_text=(FX / "wsl2-rtx4090-531.30.txt").read_text(), driver=None, compute_caps=["9.0"])
    assert f.cuda_max == "12.1" and f.gpus[0].compute_cap == "9.0" and len(f.gpus) == 1
    with pytest.raises(DlboxError):
        facts_from_options(nvidia_smi_text=None, driver=None, compute_caps=["sm_86"])
    with pytest.raises(DlboxError):
        facts_from_options(nvidia_smi_text=None, driver="latest", compute_caps=None)

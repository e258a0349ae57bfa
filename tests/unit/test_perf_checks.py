"""`verify --perf` judgement (dlbox.doctor.perf) from verify_perf.py observations.

Peaks are the catalog's datasheet rows (gpu_peaks.json); each expectation below is derived from
the row it cites and the threshold constants in dlbox.doctor.perf.
"""

import copy

from dlbox.catalog import load
from dlbox.doctor import perf

H100 = "NVIDIA H100 80GB HBM3"
BASE = {
    "python": "3.12.3", "shm_bytes": 64 << 30, "memlock": {"soft": None, "hard": None},
    "torch": {"present": True, "version": "2.11.0+cu130", "cuda": "13.0"}, "cuda_available": True,
    "gpus": [{"index": 0, "name": H100, "capability": "9.0", "matmul_n": 8192,
              "matmul_tflops": {"bf16": 790.0, "fp16": 780.0, "tf32": 400.0},
              "h2d": {"bytes": 256 << 20, "pinned_gbps": 50.0, "pageable_gbps": 20.0}}],
    "nvidia_smi": [{"index": "0", "name": H100, "power.limit": "700.00", "power.max_limit": "700.00",
                    "clocks.sm": "1980", "clocks.max.sm": "1980", "pcie.link.gen.current": "5",
                    "pcie.link.gen.max": "5", "pcie.link.width.current": "16", "pcie.link.width.max": "16"}],
    "allreduce": {"ok": True, "world": 1, "bytes": 256 << 20, "algbw_gbps": 900.0, "busbw_gbps": 0.0, "nccl": "2.27.7"},
    "dataloader": {"workers": 4, "ok": True, "gbps": 3.5, "seconds": 1.1},
}


def by_id(checks):
    return {c.id: c for c in checks}


def test_healthy_h100_is_ok_and_cites_the_peak_row():
    row = load().peak_row(H100)
    c = by_id(perf.perf_checks(BASE))
    assert c["perf-matmul-0"].status == "ok"
    assert f"{790.0 / row.bf16:.0%} of {row.bf16:g}" in c["perf-matmul-0"].detail
    assert "[gpu_peaks.json H100 SXM5]" in c["perf-matmul-0"].detail
    assert c["perf-h2d-0"].status == "ok" and "gen5 x16" in c["perf-h2d-0"].detail
    assert c["perf-allreduce"].status == "ok" and "1 GPU" in c["perf-allreduce"].detail
    assert c["perf-dataloader"].status == "ok"


def test_low_matmul_under_a_power_cap_names_the_cap():
    obs = copy.deepcopy(BASE)
    row = load().peak_row(H100)
    obs["gpus"][0]["matmul_tflops"]["bf16"] = round(row.bf16 * perf.MATMUL_MIN_RATIO["bf16"] - 1, 1)
    obs["nvidia_smi"][0]["power.limit"] = "350.00"
    c = by_id(perf.perf_checks(obs))["perf-matmul-0"]
    assert c.status == "warn" and "power limit 350 W of 700 W" in c.fix


def test_narrow_pcie_link_and_useless_pinning_are_named():
    obs = copy.deepcopy(BASE)
    obs["nvidia_smi"][0]["pcie.link.width.current"] = "8"
    obs["gpus"][0]["h2d"] = {"pinned_gbps": 10.0, "pageable_gbps": 10.0}
    obs["memlock"] = {"soft": 65536, "hard": 65536}
    c = by_id(perf.perf_checks(obs))["perf-h2d-0"]
    assert c.status == "warn"
    assert "x8 of x16" in c.detail and "no faster than pageable" in c.detail and "64 KiB" in c.detail


def test_dataloader_crash_in_a_small_shm_says_how_to_fix_it():
    obs = copy.deepcopy(BASE)
    obs["shm_bytes"] = 64 << 20
    obs["dataloader"] = {"workers": 4, "ok": False, "error": "RuntimeError: DataLoader worker (pid 12) is killed by "
                         "signal: Bus error. It is possible that dataloader's workers are out of shared memory."}
    c = by_id(perf.perf_checks(obs))["perf-dataloader"]
    assert c.status == "fail" and "64 MiB" in c.detail and "--shm-size" in c.fix


def test_unknown_gpu_reports_figures_without_a_ratio():
    obs = copy.deepcopy(BASE)
    obs["gpus"][0]["name"] = obs["nvidia_smi"][0]["name"] = "NVIDIA GeForce RTX 4090"
    c = by_id(perf.perf_checks(obs))["perf-matmul-0"]
    assert c.status == "ok" and "no datasheet peak" in c.detail


def test_no_torch_is_one_skip():
    assert [c.status for c in perf.perf_checks({"torch": {"present": False}})] == ["skip"]

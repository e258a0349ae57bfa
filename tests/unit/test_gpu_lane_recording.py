"""What the GPU lane recorded on real GPUs (tests/fixtures/gpu-lane/: an NVIDIA H200 twice and an
NVIDIA H100 80GB HBM3, each folder with its SOURCES.md), replayed through the parser, the plan, the in-container checks and the
`verify --perf` judgement. Expectations come from the catalog rows each check cites."""

import json
from pathlib import Path

import pytest

from dlbox.catalog import load
from dlbox.doctor.container import checks_from_observations
from dlbox.doctor.perf import MATMUL_MIN_RATIO, PCIE_LANE_GBPS, perf_checks
from dlbox.host.nvidia_smi import CAP_FROM_DRIVER, effective_cuda_max, parse_nvidia_smi

LANES = Path(__file__).resolve().parents[1] / "fixtures" / "gpu-lane"
LANE = LANES / "h200-580.159.04-2026-11-26"
# the same lane, re-run on main after every change of the round landed
FINAL = LANES / "h200-580.159.04-2026-11-26-final"
# a third session's lane, on an H100, with the code of that session
H100 = LANES / "h100-580.159.04-2026-11-26"
# what each lane's GPU is: its name as the driver spells it, memory, datasheet row
GPU = {LANE: ("NVIDIA H200", 143771), FINAL: ("NVIDIA H200", 143771), H100: ("NVIDIA H100 80GB HBM3", 81559)}


@pytest.fixture(params=[LANE, FINAL, H100], ids=["h200-first", "h200-final", "h100"])
def lane(request) -> Path:
    return request.param


def text(name: str, where: Path = LANE) -> str:
    return (where / name).read_text()


def test_every_recorded_shape_names_the_gpu_and_its_driver(lane):
    name_, memory = GPU[lane]
    branch = next(r for r in load().driver_branches if r.branch == 580)
    for name in ("nvidia-smi.txt", "nvidia-smi-q.txt", "nvidia-smi-L.txt", "query.csv.txt", "query-noheader.csv.txt"):
        f = parse_nvidia_smi(text(name, lane))
        assert [g.name for g in f.gpus] == [name_], name
    table = parse_nvidia_smi(text("nvidia-smi.txt", lane))
    assert table.driver_version == "580.159.04" and table.cuda_max == branch.cuda_max
    assert effective_cuda_max(table) == (branch.cuda_max, None)
    assert table.gpus[0].memory_mib == memory


def test_compute_capability_comes_from_the_driver_when_asked(lane):
    merged = parse_nvidia_smi(text("nvidia-smi.txt", lane) + "\n" + text("query.csv.txt", lane))
    g = merged.gpus[0]
    assert (g.compute_cap, g.cap_from) == ("9.0", CAP_FROM_DRIVER)
    # the name table agrees (fallback for drivers before R510)
    assert parse_nvidia_smi(text("nvidia-smi.txt", lane)).gpus[0].compute_cap == "9.0"


def test_live_plan_on_the_lane_chose_a_cuda_torch(lane):
    plan = json.loads(text("plan.json", lane))
    assert plan["gpu"] is True
    assert plan["torch"]["variant"].startswith("cu")


def test_in_container_observations_from_the_gpu_are_all_ok(lane):
    driver = parse_nvidia_smi(text("nvidia-smi.txt", lane))
    checks = checks_from_observations(json.loads(text("inside.json", lane)), driver=driver, expect_nvcc=False,
                                      require_gpu=True)
    bad = [(c.id, c.status, c.detail) for c in checks if c.status not in ("ok",)]
    assert not bad, bad


def test_verify_perf_meets_the_datasheet_thresholds(lane):
    obs = json.loads(text("perf.json", lane))
    peak = load().peak_row(GPU[lane][0])
    got = obs["gpus"][0]["matmul_tflops"]
    for dt, v in got.items():
        assert v >= MATMUL_MIN_RATIO[dt] * getattr(peak, dt), dt
    link = PCIE_LANE_GBPS[5] * 16
    assert obs["gpus"][0]["h2d"]["pinned_gbps"] >= 0.5 * link
    checks = {c.id: c for c in perf_checks(obs)}
    assert all(c.status == "ok" for c in checks.values()), [(c.id, c.status, c.detail) for c in checks.values()]
    assert f"bf16 {got['bf16']} TFLOP/s ({got['bf16'] / peak.bf16:.0%} of {peak.bf16:g})" in checks["perf-matmul-0"].detail
    assert "PCIe gen5 x16" in checks["perf-h2d-0"].detail


def test_the_first_lane_run_reported_its_hung_all_reduce_as_a_failure():
    obs = json.loads(text("perf-run1-allreduce-hang.json"))
    c = {c.id: c for c in perf_checks(obs)}["perf-allreduce"]
    assert c.status == "fail" and "no answer" in c.detail


@pytest.mark.parametrize("where", [FINAL, H100], ids=["h200-final", "h100"])
def test_the_lane_plans_the_newest_cu130_torch_from_the_drivers_compute_capability(where):
    plan = json.loads(text("plan.json", where))
    branch = next(r for r in load().driver_branches if r.branch == 580)
    assert plan["host"]["driver"]["cuda_allowed"] == branch.cuda_max == "13.0"
    assert plan["host"]["gpus"][0]["compute_cap"] == "9.0"
    assert plan["host"]["gpus"][0]["compute_cap_from"].startswith("nvidia-smi --query-gpu")
    assert plan["torch"]["variant"] == "cu130"


MORE = H100 / "more"


@pytest.mark.parametrize("name,driver", [
    ("nvidia-smi--query-gpu_driver_version_name_--format_csv_noheader_nounits.txt", "580.159.04"),
    ("nvidia-smi--query-gpu_name_driver_version_compute_cap_--format_csv_noheader.txt", "580.159.04"),
    ("nvidia-smi--query-gpu_name_index_driver_version_compute_cap_--format_csv.txt", "580.159.04"),
    ("nvidia-smi--query-gpu_index_name_uuid_compute_cap_memory_total_memory_used_power_limit_clocks_max_sm_pcie_link_gen_max_pcie_link_width_max_--format_csv.txt", None),
    ("nvidia-smi-q_-x.txt", "580.159.04"),
])
def test_every_query_shape_recorded_on_the_h100_names_it_and_its_capability(name, driver):
    f = parse_nvidia_smi((MORE / name).read_text())
    assert [(g.name, g.compute_cap) for g in f.gpus] == [("NVIDIA H100 80GB HBM3", "9.0")]
    assert f.driver_version == driver

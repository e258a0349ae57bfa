"""Judge the raw measurements printed by templates/verify_perf.py into checks (`verify --perf`).

Pure: `perf_checks(obs)` returns `Check`s with ids perf-matmul-<gpu>, perf-h2d-<gpu>,
perf-allreduce, perf-dataloader. Each low figure names its likely cause from what the probe
recorded next to it (power limit, SM clock, throttle reasons, PCIe link generation and width,
memlock, /dev/shm). Peaks come from the catalog (gpu_peaks.json, datasheet figures with sources).
"""

from __future__ import annotations

from dlbox.catalog import load
from dlbox.report import Check

# A bf16/fp16 GEMM of 8192^3 reaches 75-85% of the dense datasheet peak on a healthy data-center
# GPU (KINDS.md on this workplace's H100/H200: 769-798 of 989 TFLOP/s); below 60% something caps it.
MATMUL_MIN_RATIO = {"bf16": 0.6, "fp16": 0.6, "tf32": 0.5}
# PCIe payload per lane in GB/s after 128b/130b encoding: 8, 16, 32, 64 GT/s (PCI-SIG base specs 3.0-6.0).
PCIE_LANE_GBPS = {3: 0.985, 4: 1.969, 5: 3.938, 6: 7.877}
H2D_MIN_RATIO = 0.5          # of the link's payload rate, pinned
PINNED_MIN_GAIN = 1.15       # pinned copies should beat pageable ones by at least this factor
DATALOADER_MIN_GBPS = 1.0    # 4 workers moving 600 KiB images through /dev/shm
ALLREDUCE_MIN_BUSBW = 10.0   # GB/s: below PCIe gen3 x16 means no P2P path or a starved fabric
SHM_MIN = 1 << 30


def _num(v) -> float | None:
    try:
        return float(str(v).split()[0])
    except (TypeError, ValueError, IndexError):
        return None


def _smi_for(obs: dict, index: int) -> dict:
    return next((r for r in obs.get("nvidia_smi") or [] if str(r.get("index")) == str(index)), {})


def _matmul_causes(smi: dict) -> list[str]:
    causes = []
    pl, pmax = _num(smi.get("power.limit")), _num(smi.get("power.max_limit"))
    if pl and pmax and pl < 0.9 * pmax:
        causes.append(f"power limit {pl:.0f} W of {pmax:.0f} W possible (nvidia-smi -pl)")
    # nvidia-smi's CSV header names the fields by their current names (R580: clocks.current.sm,
    # clocks_event_reasons.active); older drivers print clocks.sm / clocks_throttle_reasons.active
    clk = _num(smi.get("clocks.current.sm", smi.get("clocks.sm")))
    cmax = _num(smi.get("clocks.max.sm"))
    if clk and cmax and clk < 0.8 * cmax:
        causes.append(f"SM clock {clk:.0f} of {cmax:.0f} MHz after the run")
    reasons = str(smi.get("clocks_event_reasons.active", smi.get("clocks_throttle_reasons.active", ""))).strip()
    if reasons and reasons not in ("0x0000000000000000", "0x0000000000000001", "[N/A]", "N/A", ""):
        causes.append(f"throttle reasons {reasons} (nvidia-smi -q -d PERFORMANCE)")
    return causes or ["another process sharing the GPU, or a MIG slice (nvidia-smi shows both)"]


def _matmul(g: dict, smi: dict) -> Check:
    cid = f"perf-matmul-{g['index']}"
    got = g.get("matmul_tflops") or {}
    if not got:
        return Check(cid, "fail", f"{g['name']}: matmul failed: {next(iter((g.get('matmul_errors') or {'': '?'}).values()))}")
    peak = load().peak_row(g["name"])
    parts, low = [], []
    for dt, v in got.items():
        if peak is None:
            parts.append(f"{dt} {v} TFLOP/s")
            continue
        ref = getattr(peak, dt)
        ratio = v / ref
        parts.append(f"{dt} {v} TFLOP/s ({ratio:.0%} of {ref:g})")
        if ratio < MATMUL_MIN_RATIO[dt]:
            low.append(dt)
    n = g.get("matmul_n")
    head = f"{g['name']} {n}x{n}x{n}: " + ", ".join(parts)
    if peak is None:
        return Check(cid, "ok", head + " (no datasheet peak in the catalog for this GPU: figures only)")
    head += f" [gpu_peaks.json {peak.product}]"
    if low:
        return Check(cid, "warn", head + f"; {'/'.join(low)} below {MATMUL_MIN_RATIO[low[0]]:.0%} of peak",
                     "likely: " + "; ".join(_matmul_causes(smi)))
    return Check(cid, "ok", head)


def _h2d(g: dict, smi: dict, memlock: dict) -> Check:
    cid = f"perf-h2d-{g['index']}"
    h = g.get("h2d") or {}
    pinned, pageable = h.get("pinned_gbps"), h.get("pageable_gbps")
    if pinned is None:
        return Check(cid, "fail", f"pinned host->device copy failed: {h.get('pinned_error', '?')}",
                     "run with --ulimit memlock=-1 (pinned buffers are locked memory)")
    gen, gmax = _num(smi.get("pcie.link.gen.current")), _num(smi.get("pcie.link.gen.max"))
    width, wmax = _num(smi.get("pcie.link.width.current")), _num(smi.get("pcie.link.width.max"))
    detail = f"host->device {pinned} GB/s pinned, {pageable} GB/s pageable"
    causes = []
    if gen and width and int(gen) in PCIE_LANE_GBPS:
        link = PCIE_LANE_GBPS[int(gen)] * width
        detail += f"; PCIe gen{int(gen)} x{int(width)} carries {link:.1f} GB/s"
        if pinned < H2D_MIN_RATIO * link:
            causes.append(f"pinned copies reach {pinned / link:.0%} of the link")
    if width and wmax and width < wmax:
        causes.append(f"the link trained at x{int(width)} of x{int(wmax)} lanes (slot, riser or BIOS)")
    if gen and gmax and gen < gmax:
        causes.append(f"the link runs at gen{int(gen)} of gen{int(gmax)}")
    if pageable and pinned < PINNED_MIN_GAIN * pageable:
        soft = (memlock or {}).get("soft")
        causes.append("pinned memory is no faster than pageable"
                      + (f" (memlock limit {soft // 1024} KiB: pinned buffers fall back or fail)" if soft is not None else ""))
    if causes:
        return Check(cid, "warn", detail + "; " + "; ".join(causes),
                     "check `nvidia-smi -q -d PCIE`, the slot, and run with --ulimit memlock=-1")
    return Check(cid, "ok", detail)


def _allreduce(obs: dict) -> Check:
    ar = obs.get("allreduce")
    if not ar:
        return Check("perf-allreduce", "skip", "no GPU visible")
    if not ar.get("ok"):
        shm = obs.get("shm_bytes")
        hint = f" (/dev/shm is {shm >> 20} MiB; NCCL keeps its buffers there)" if shm is not None and shm < SHM_MIN else ""
        last = (str(ar.get("error", "")).strip().splitlines() or ["?"])[-1]
        return Check("perf-allreduce", "fail", f"NCCL all-reduce over {ar.get('world')} GPU(s) failed{hint}: {last}",
                     "run with --ipc=host or --shm-size=8g; NCCL_DEBUG=INFO shows where it stops")
    if ar.get("world", 1) < 2:
        return Check("perf-allreduce", "ok", f"NCCL {ar.get('nccl')} initialised and all-reduced on 1 GPU; bus "
                     "bandwidth needs at least 2 GPUs")
    bw = ar.get("busbw_gbps", 0)
    detail = f"NCCL {ar.get('nccl')} all-reduce of {ar['bytes'] >> 20} MiB over {ar['world']} GPUs: bus bandwidth {bw} GB/s"
    if bw < ALLREDUCE_MIN_BUSBW:
        return Check("perf-allreduce", "warn", detail + f" (below {ALLREDUCE_MIN_BUSBW:g} GB/s)",
                     "likely no peer-to-peer path: see `nvidia-smi topo -m`, NCCL_P2P_DISABLE, IOMMU/ACS settings")
    return Check("perf-allreduce", "ok", detail)


def _dataloader(obs: dict) -> Check:
    d = obs.get("dataloader") or {}
    shm = obs.get("shm_bytes")
    shm_txt = "unknown" if shm is None else f"{shm >> 20} MiB"
    fix = "run with --shm-size=8g or --ipc=host (DataLoader workers hand batches over through /dev/shm)"
    if not d:
        return Check("perf-dataloader", "skip", "not measured (torch missing)")
    if not d.get("ok"):
        last = (str(d.get("error", "")).strip().splitlines() or ["?"])[-1]
        return Check("perf-dataloader", "fail", f"DataLoader with {d.get('workers')} workers failed (/dev/shm {shm_txt}): {last}", fix)
    detail = f"DataLoader, {d['workers']} workers: {d['gbps']} GB/s through /dev/shm ({shm_txt})"
    if d["gbps"] < DATALOADER_MIN_GBPS or (shm is not None and shm < SHM_MIN):
        return Check("perf-dataloader", "warn", detail, fix)
    return Check("perf-dataloader", "ok", detail)


def perf_checks(obs: dict) -> list[Check]:
    """Checks from one verify_perf.py observation."""
    torch = obs.get("torch") or {}
    if not torch.get("present"):
        return [Check("perf", "skip", "torch is not installed: nothing to measure")]
    out: list[Check] = []
    if not obs.get("cuda_available"):
        out.append(Check("perf-gpu", "skip", f"torch {torch.get('version')} sees no GPU: GPU figures skipped"))
    for g in obs.get("gpus") or []:
        smi = _smi_for(obs, g["index"])
        out.append(_matmul(g, smi))
        out.append(_h2d(g, smi, obs.get("memlock") or {}))
    if obs.get("cuda_available"):
        out.append(_allreduce(obs))
    out.append(_dataloader(obs))
    return out

"""Read what the host's NVIDIA driver says about itself, from `nvidia-smi` text.

`parse_nvidia_smi` accepts every shape users really paste (fixtures in
tests/fixtures/nvidia-smi/, origins in SOURCES.md):

- the classic table header `NVIDIA-SMI 530.37  Driver Version: 531.30  CUDA Version: 12.1`
  (the NVIDIA-SMI number can differ from the driver on Colab and WSL2: we use Driver Version);
- the R610+ header `KMD Version: 610.43.02  CUDA UMD Version: 13.3`;
- `CUDA Version: N/A` (cuda_max stays None; callers derive it from the driver branch);
- `nvidia-smi -q` (`Driver Version : 460.32.03`, `Product Name : Tesla T4`);
- `--query-gpu=name,driver_version,compute_cap,memory.total --format=csv`, with or
  without header and units, in any column order when the header is there.

Nothing here runs nvidia-smi: probing is the caller's job, so decisions can be replayed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dlbox.catalog import load, vkey
from dlbox.errors import DlboxError


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    compute_cap: str | None  # "8.6"
    memory_mib: int | None


@dataclass(frozen=True)
class DriverFacts:
    driver_version: str | None  # the Driver Version / KMD field, not the NVIDIA-SMI number
    cuda_max: str | None  # highest CUDA the driver allows; None when "N/A" or unknown
    gpus: tuple[Gpu, ...] = ()
    wsl: bool = False
    source: str = ""  # "nvidia-smi", "file:PATH", "--driver"


_DRIVER = re.compile(r"(?:Driver|KMD) Version\s*:\s*([0-9][0-9.]*)")
_CUDA = re.compile(r"CUDA(?: UMD)? Version\s*:\s*([0-9]+\.[0-9]+|N/A)")
# "|   0  NVIDIA GeForce RTX 4090         On | 00000000:01:00.0  On |" — the bus id anchors it
_ROW = re.compile(r"^\|\s+(\d+)\s+(.+?)\s+(?:On|Off)\s*\|\s*[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:")
_MEM = re.compile(r"(\d+)MiB\s*/\s*(\d+)MiB")
_PRODUCT = re.compile(r"^\s*Product Name\s*:\s*(.+?)\s*$", re.M)
_CAP = re.compile(r"^\d+\.\d+$")


def compute_cap_for_name(name: str) -> str | None:
    """Compute capability for a product name from the catalog's name table, else None."""
    for row in sorted(load().gpu_names, key=lambda r: -len(r.match)):
        # whole-word start, prefix allowed ("RTX 50" matches "RTX 5090", "H200" not "GH200")
        if re.search(r"(?<![A-Za-z0-9])" + re.escape(row.match), name, re.I):
            return row.compute_cap
    return None


def cuda_max_for_driver(driver: str) -> str | None:
    """Highest CUDA a driver reports, from the catalog's branch map (565 → "12.7")."""
    try:
        major = int(driver.strip().split(".")[0])
    except ValueError:
        return None
    rows = [r for r in load().driver_branches if r.branch <= major]
    return max(rows, key=lambda r: r.branch).cuda_max if rows else None


def _int(text: str) -> int | None:
    m = re.search(r"\d+", text)
    return int(m.group()) if m else None


def _parse_csv(lines: list[str]) -> DriverFacts:
    cols = ["name", "driver_version", "compute_cap", "memory.total"]  # the documented query
    first = [c.strip().lower() for c in lines[0].split(",")]
    if any(c.split(" ")[0] in ("name", "driver_version", "compute_cap", "index") for c in first):
        cols = [c.split(" [")[0].split(" ")[0] for c in first]  # "memory.total [MiB]"
        lines = lines[1:]
    gpus, driver = [], None
    for i, line in enumerate(lines):
        vals = dict(zip(cols, (v.strip() for v in line.split(","))))
        driver = driver or vals.get("driver_version")
        cap = vals.get("compute_cap")
        name = vals.get("name", vals.get("gpu_name", ""))
        gpus.append(Gpu(
            index=_int(vals["index"]) if "index" in vals else i,
            name=name,
            compute_cap=cap if cap and _CAP.match(cap) else compute_cap_for_name(name),
            memory_mib=_int(vals.get("memory.total", "")),
        ))
    return DriverFacts(driver_version=driver, cuda_max=None, gpus=tuple(gpus), source="nvidia-smi")


def parse_nvidia_smi(text: str) -> DriverFacts:
    """Driver version, driver CUDA ceiling and GPUs from any nvidia-smi output shape."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if lines and "|" not in text and ":" not in text and all("," in ln for ln in lines):
        return _parse_csv(lines)
    drv = _DRIVER.search(text)
    cuda = _CUDA.search(text)
    gpus: list[Gpu] = []
    all_lines = text.splitlines()
    for i, line in enumerate(all_lines):
        m = _ROW.match(line.strip())
        if not m:
            continue
        mem = _MEM.search(all_lines[i + 1]) if i + 1 < len(all_lines) else None
        name = m.group(2).strip()
        gpus.append(Gpu(int(m.group(1)), name, compute_cap_for_name(name),
                        int(mem.group(2)) if mem else None))
    if not gpus:  # nvidia-smi -q
        for i, name in enumerate(_PRODUCT.findall(text)):
            gpus.append(Gpu(i, name, compute_cap_for_name(name), None))
    cuda_max = cuda.group(1) if cuda and cuda.group(1) != "N/A" else None
    return DriverFacts(drv.group(1) if drv else None, cuda_max, tuple(gpus), source="nvidia-smi")


def facts_from_options(
    *,
    nvidia_smi_text: str | None,
    driver: str | None,
    compute_caps: list[str] | None,
    wsl: bool = False,
) -> DriverFacts:
    """Facts from the what-if flags of `dlbox plan` (`--nvidia-smi`, `--driver`, `--compute-cap`).

    `--driver` overrides a parsed driver and derives cuda_max from the catalog's branch map.
    Each `--compute-cap` sets the capability of GPU i in order, or adds a GPU when there
    are more caps than parsed GPUs.
    """
    facts = parse_nvidia_smi(nvidia_smi_text) if nvidia_smi_text else DriverFacts(None, None)
    if driver:
        if not re.fullmatch(r"\d+(\.\d+)*", driver.strip()):
            raise DlboxError(f"--driver {driver!r} is not a driver version",
                             fix="give the Driver Version nvidia-smi prints, e.g. --driver 535.104.05")
        facts = replace(facts, driver_version=driver.strip(), cuda_max=cuda_max_for_driver(driver),
                        source="--driver" if not nvidia_smi_text else facts.source + "+--driver")
    if compute_caps:
        for cap in compute_caps:
            if not _CAP.match(cap.strip()):
                raise DlboxError(f"--compute-cap {cap!r} is not a compute capability",
                                 fix="use MAJOR.MINOR, e.g. --compute-cap 8.6")
        gpus = list(facts.gpus)
        for i, cap in enumerate(c.strip() for c in compute_caps):
            if i < len(gpus):
                gpus[i] = replace(gpus[i], compute_cap=cap)
            else:
                gpus.append(Gpu(i, f"GPU {i} (--compute-cap {cap})", cap, None))
        facts = replace(facts, gpus=tuple(gpus))
    return replace(facts, wsl=wsl or facts.wsl)


def effective_cuda_max(facts: DriverFacts) -> tuple[str | None, str | None]:
    """The CUDA ceiling to plan with, and a note when it differs from what was reported.

    nvidia-smi run inside an nvidia/cuda container with the cuda-compat package reports the
    container's CUDA, not the driver's (470.199.02 "reports" 11.7 and 11.8); forward
    compatibility only works on data-center GPUs, so plan with the branch value
    (https://docs.nvidia.com/deploy/cuda-compatibility/, "Forward Compatibility").
    """
    branch = cuda_max_for_driver(facts.driver_version) if facts.driver_version else None
    if facts.cuda_max is None:
        return branch, None
    if branch and vkey(facts.cuda_max) > vkey(branch):
        return branch, (f"nvidia-smi reported CUDA {facts.cuda_max} but driver "
                        f"{facts.driver_version} belongs to the branch that tops at CUDA {branch} "
                        "(catalog driver_branches); the higher number comes from forward-"
                        "compatibility libraries inside a container, which only data-center GPUs "
                        f"can use — planning with {branch}")
    return facts.cuda_max, None

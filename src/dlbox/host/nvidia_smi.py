"""Read what the host's NVIDIA driver says about itself, from `nvidia-smi` text.

`parse_nvidia_smi` accepts every shape users really paste (fixtures in
tests/fixtures/nvidia-smi/, origins in SOURCES.md), prompt lines and all:

- the classic table (R331..R595), the R610+ header `KMD Version … CUDA UMD Version`,
  Windows `nvidia-smi.exe` tables whose first column is TCC/WDDM, Jetson's `Orin (nvgpu)` rows,
  names cut to `NVIDIA GeForce ...`, and `CUDA Version: N/A` / `ERR!` / `Not Found`;
- `nvidia-smi -q` / `-a` (`Driver Version : …`, `Product Name : …`, `Driver Model`);
- `nvidia-smi -L` (`GPU 0: NAME (UUID: …)`, with MIG devices under their GPU);
- `--query-gpu=… --format=csv` read by its header names, in any column order (a header-less
  CSV is read as dlbox's own query, index,name,compute_cap,memory.total, when it starts with an
  index, else as name,driver_version,compute_cap,memory.total);
- failures and foreign tools, each recognised and named in `problem`: the NVML driver/library
  version mismatch, "No devices were found", a driver that is not loaded, `rocm-smi` (AMD),
  `tegrastats` (Jetson), and a `compute_cap` query the driver does not know (pre-R510).

Compute capability comes from the driver (`--query-gpu=compute_cap`) when it was asked, else
from the catalog's name table; `Gpu.cap_from` says which. Nothing here runs nvidia-smi:
probing is the caller's job (host/observe.py), so every decision can be replayed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dlbox.catalog import load, vkey
from dlbox.catalog.explain import NVIDIA_SMI_PROBLEMS as PROBLEMS
from dlbox.errors import DlboxError
from dlbox.host.smi_csv import csv_blocks, headerless_csv

CAP_FROM_DRIVER = "nvidia-smi --query-gpu=compute_cap"


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    compute_cap: str | None  # "8.6"
    memory_mib: int | None
    cap_from: str = ""       # CAP_FROM_DRIVER | "name table [gpu_names.json PATTERN]" | "--compute-cap" | ""
    mig: bool = False        # MIG mode on (its slices are listed by -L / the MIG table)


@dataclass(frozen=True)
class DriverFacts:
    driver_version: str | None  # the Driver Version / KMD field, not the NVIDIA-SMI number
    cuda_max: str | None        # the CUDA Version nvidia-smi reported; None when N/A, ERR! or absent
    gpus: tuple[Gpu, ...] = ()
    wsl: bool = False
    source: str = ""            # "nvidia-smi", "file:PATH", "--driver"
    problem: str | None = None  # nvml-mismatch | no-devices | no-driver | amd | tegrastats | no-compute-cap-field
    problem_detail: str = ""
    tegra: bool = False         # a Jetson (L4T) driver: not a desktop/data-center branch
    arch: str | None = None     # "aarch64" when the text or the GPU says so
    arch_from: str = ""
    driver_model: str | None = None  # "WDDM" | "TCC" on Windows
    smi_version: str | None = None   # the NVIDIA-SMI number (differs from the driver on WSL, Colab)
    cuda_na: bool = False            # nvidia-smi printed "CUDA Version: N/A" / "Not Found" (no libcuda there)


# the table/-q field, the XML element, `nvidia-smi --version` ("DRIVER version : 580.159.04") and
# /proc/driver/nvidia/version ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04")
_DRIVER = re.compile(r"(?:(?:Driver|KMD) Version|DRIVER version)\s*:\s*([0-9][0-9.]*)|<driver_version>([0-9][0-9.]*)</driver_version>"
                     r"|NVRM version: NVIDIA UNIX .*?Kernel Module(?: for \w+)?\s+([0-9]+\.[0-9.]+)")
_SMI = re.compile(r"NVIDIA-SMI(?: version)?\s*:?\s+([0-9][0-9.]*)")
_CUDA = re.compile(r"CUDA(?: UMD)? Version\s*:\s*([0-9]+\.[0-9]+|N/A|ERR!|Not Found)"
                   r"|<cuda_version>([0-9]+\.[0-9]+|N/A|Not Found)</cuda_version>")
# "|   0  NVIDIA GeForce RTX 4090   On | 00000000:01:00.0  On |"; Windows: "...  WDDM  |";
# Jetson: "|   0  Orin (nvgpu)   N/A  | N/A   N/A |"; pastes cut right after the name column.
_ROW = re.compile(r"^\|\s+(\d+)\s+(.+?)\s+(On|Off|WDDM|TCC|N/A)\s*\|"
                  r"(?:\s*(?:[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.\d|N/A)|\s*$)")
_MEM = re.compile(r"(\d+)Mi?B\s*/\s*(\d+)Mi?B")  # R3xx printed "9MB /  4095MB"
_PRODUCT = re.compile(r"^\s*Product Name\s*:\s*(.+?)\s*$|<product_name>(.+?)</product_name>", re.M)
# "GPU 0: NAME (UUID: GPU-…)"; abridged pastes drop the UUID ("GPU 0: NVIDIA Thor").
_LIST = re.compile(r"^\s*GPU (\d+): (.+?)(?: \(UUID: [^)]*\)?)?\s*$")  # a cut paste may lose the ")"
# Pasted replies quote with "> "; a GitHub/e-mail quote must not hide the table.
_QUOTE = re.compile(r"^[ \t]*(?:>[ \t]?)+", re.M)
_MIG_LIST = re.compile(r"^\s+MIG \S+\s+Device\s+\d+:")
_CAP = re.compile(r"^\d+\.\d+$")
_GRACE = re.compile(r"\b(GH200|GB200|GB300|GB10)\b", re.I)  # Grace superchips: the host CPU is arm64
_TEGRA_NAME = re.compile(r"\(nvgpu\)|\bOrin\b|\bThor\b|\bXavier\b", re.I)


def compute_cap_for_name(name: str) -> tuple[str | None, str]:
    """(compute capability, where from) for a product name, from the catalog's name table."""
    for row in sorted(load().gpu_names, key=lambda r: -len(r.match)):
        if re.search(r"(?<![A-Za-z0-9])(?:" + row.match + ")", name, re.I):
            note = " (name cut short)" if name.rstrip().endswith("...") else ""
            unverified = ", unverified" if row.status != "verified" else ""
            return row.compute_cap, f"name table [gpu_names.json {row.match}{unverified}]{note}"
    return None, ""


def _branch_row(driver: str):
    try:
        major = int(driver.strip().split(".")[0])
    except ValueError:
        return None
    rows = [r for r in load().driver_branches if r.branch <= major]
    return max(rows, key=lambda r: r.branch) if rows else None


def cuda_max_for_driver(driver: str) -> str | None:
    """Highest CUDA a desktop/data-center driver allows, from the catalog's branch map (565 → "12.7")."""
    row = _branch_row(driver)
    return row.cuda_max if row else None


def is_l4t_driver(driver: str | None) -> bool:
    """R540 exists only as the Jetson Linux (L4T r36 / JetPack 6) driver: there is no desktop or
    data-center R540 branch (driver_branches.json goes 535 → 545; the Orin fixtures report 540.4.0)."""
    return bool(driver) and driver.split(".")[0] == "540"


def _int(text: str) -> int | None:
    m = re.search(r"\d+", text or "")
    return int(m.group()) if m else None


def _gpu(index: int, name: str, cap: str | None = None, mem: int | None = None, mig: bool = False) -> Gpu:
    if cap and _CAP.match(cap):
        return Gpu(index, name, cap, mem, CAP_FROM_DRIVER, mig)
    c, why = compute_cap_for_name(name)
    return Gpu(index, name, c, mem, why, mig)


def _problem(text: str) -> tuple[str | None, str]:
    if "Driver/library version mismatch" in text:
        m = re.search(r"NVML library version:\s*([0-9.]+)", text)
        return "nvml-mismatch", f"NVML library version {m.group(1)}" if m else ""
    if "No devices were found" in text:
        return "no-devices", ""
    if "couldn't communicate with the NVIDIA driver" in text or "NVIDIA-SMI has failed" in text:
        return "no-driver", ""
    if "Failed to initialize NVML: Unknown Error" in text:
        return "nvml-unknown", ""
    if "couldn't find libnvidia-ml.so" in text or "could not load NVML library" in text:
        return "no-nvml-lib", ""
    m = re.search(r"Unable to determine the device handle for GPU\s*([0-9A-Fa-f:.]+)", text)
    if m:
        return "gpu-lost", f"GPU {m.group(1).rstrip(':.')}"
    # rocm-smi: its banner, or the concise table header (ROCm <= 5: "GPU Temp AvgPwr SCLK";
    # ROCm 6: "Device  Node  IDs  Temp  Power  Partitions  SCLK")
    if "ROCm System Management Interface" in text or re.search(
            r"^\s*(?:GPU\s+Temp\s+AvgPwr\s+SCLK|Device\s+(?:Node\s+IDs|\[Model : Revision\])\s+Temp)", text, re.M):
        return "amd", ""
    if "GR3D_FREQ" in text and re.search(r"RAM \d+/\d+MB", text):
        return "tegrastats", ""
    if re.search(r'Field "compute_cap" is not a valid field', text):
        return "no-compute-cap-field", ""
    return None, ""


def parse_nvidia_smi(text: str) -> DriverFacts:
    """Driver version, reported CUDA, GPUs and any recognised failure, from any output shape."""
    text = _QUOTE.sub("", text)
    lines = [ln.rstrip() for ln in text.splitlines()]
    nonblank = [ln for ln in lines if ln.strip()]
    problem, detail = _problem(text)
    drv = _DRIVER.search(text)
    cuda = _CUDA.search(text)
    smi = _SMI.search(text)
    blocks = csv_blocks(nonblank)
    values = [ln for ln in nonblank if "nvidia-smi" not in ln and not re.match(r"^\S*[$#>]\s", ln)]
    if not blocks and values and "|" not in text and all("," in ln and ":" not in ln for ln in values):
        blocks = headerless_csv(values)

    gpus: list[Gpu] = []
    model = None
    in_processes = False
    for i, line in enumerate(lines):
        # The process table follows the GPU table; on Windows its rows end in "N/A |" like a GPU
        # row ("|    0   N/A  N/A      1752    C+G   Insufficient Permissions        N/A      |").
        if "Processes:" in line:
            in_processes = True
        elif "NVIDIA-SMI" in line or "GPU  Name" in line:
            in_processes = False
        m = None if in_processes else _ROW.match(line.strip())
        if not m:
            continue
        mem = _MEM.search(lines[i + 1]) if i + 1 < len(lines) else None
        mig = bool(i + 2 < len(lines) and re.search(r"\|\s+Enabled\s*\|\s*$", lines[i + 2]))
        if m.group(3) in ("WDDM", "TCC"):
            model = m.group(3)
        gpus.append(_gpu(int(m.group(1)), m.group(2).strip(), mem=int(mem.group(2)) if mem else None, mig=mig))
    if not gpus:  # nvidia-smi -L
        for line in lines:
            m = _LIST.match(line)
            if m:
                gpus.append(_gpu(int(m.group(1)), m.group(2).strip()))
            elif _MIG_LIST.match(line) and gpus:
                gpus[-1] = replace(gpus[-1], mig=True)
    if not gpus:  # nvidia-smi -q
        # -q "FB Memory Usage / Total : 81559 MiB", XML <fb_memory_usage><total>143771 MiB</total>
        mems = re.findall(r"FB Memory Usage\s*\n\s*Total\s*:\s*(\d+) MiB|<fb_memory_usage>\s*<total>(\d+) MiB", text)
        names = [a or b for a, b in _PRODUCT.findall(text)]
        gpus = [_gpu(i, name, mem=int(mems[i][0] or mems[i][1]) if i < len(mems) and len(mems) == len(names) else None)
                for i, name in enumerate(names)]
    m = re.search(r"Driver Model\s*\n\s*Current\s*:\s*(WDDM|TCC)", text)
    model = model or (m.group(1) if m else None)

    csv_driver = None
    for cols, rows in blocks:
        for pos, vals in enumerate(rows):
            row = dict(zip(cols, vals))
            csv_driver = csv_driver or row.get("driver_version")
            name = row.get("name") or row.get("gpu_name")
            idx = _int(row["index"]) if row.get("index", "").isdigit() else pos
            cap = row.get("compute_cap")
            mem = _int(row.get("memory.total", ""))
            at = next((k for k, g in enumerate(gpus) if g.index == idx), None)
            if at is None and name:
                gpus.append(_gpu(idx, name, cap, mem))
            elif at is not None and cap and _CAP.match(cap):
                gpus[at] = replace(gpus[at], compute_cap=cap, cap_from=CAP_FROM_DRIVER,
                                   memory_mib=gpus[at].memory_mib or mem)
            elif at is None and cap and _CAP.match(cap):
                gpus.append(Gpu(idx, f"GPU {idx}", cap, mem, CAP_FROM_DRIVER))
    gpus.sort(key=lambda g: g.index)

    driver = (drv.group(1) or drv.group(2) or drv.group(3)) if drv else csv_driver
    cuda_text = (cuda.group(1) or cuda.group(2)) if cuda else None
    reported = cuda_text if cuda_text and _CAP.match(cuda_text) else None
    tegra = (problem == "tegrastats" or any(_TEGRA_NAME.search(g.name) for g in gpus) or "-tegra" in text
             or is_l4t_driver(driver))
    arch, arch_from = None, ""
    # the text's word counts only when it does not also name x86_64 (a pasted `docker buildx ls`
    # lists linux/arm64 on an x86 host; `uname -a` / `Architecture: …` name one of them)
    if re.search(r"\baarch64\b|\barm64\b", text) and not re.search(r"\bx86_64\b|\bamd64\b", text):
        arch, arch_from = "aarch64", "the pasted text says aarch64/arm64"
    elif tegra:
        arch, arch_from = "aarch64", "Jetson (Tegra) boards are arm64"
    elif any(_GRACE.search(g.name) for g in gpus):
        arch, arch_from = "aarch64", "Grace superchips (GH200/GB200/GB10) have an arm64 host CPU"
    # WSL 2: nvidia-smi there is a Linux build (NVIDIA-SMI 530.37) reporting the Windows driver
    # (Driver Version: 531.30, two parts, a higher number); Colab's mismatch goes the other way.
    # R3xx printed "NVIDIA-SMI 5.325.15" for driver 325.15: not WSL, so both must be driver numbers.
    wsl = bool(smi and driver and driver.count(".") == 1 and smi.group(1) != driver
               and vkey(smi.group(1))[0] >= 300 and vkey(smi.group(1)) < vkey(driver))
    return DriverFacts(
        driver_version=driver, cuda_max=reported, gpus=tuple(gpus), source="nvidia-smi", wsl=wsl,
        problem=problem, problem_detail=detail, tegra=tegra, arch=arch, arch_from=arch_from,
        driver_model=model, smi_version=smi.group(1) if smi else None,
        cuda_na=cuda_text in ("N/A", "Not Found"),
    )


def driver_version(text: str) -> str:
    """A driver version as nvidia-smi prints it ("535.104.05"); ValueError otherwise."""
    if not re.fullmatch(r"\d+(\.\d+)*", text.strip()):
        raise ValueError(f"{text!r} is not a driver version: give the Driver Version nvidia-smi prints, "
                         "e.g. 535.104.05")
    return text.strip()


def compute_capability(text: str) -> str:
    """A compute capability MAJOR.MINOR ("8.6"); ValueError otherwise."""
    if not _CAP.match(text.strip()):
        raise ValueError(f"{text!r} is not a compute capability: use MAJOR.MINOR, e.g. 8.6")
    return text.strip()


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
        try:
            driver = driver_version(driver)
        except ValueError as exc:
            raise DlboxError(f"--driver {exc}") from None
        tegra = facts.tegra or is_l4t_driver(driver.strip())
        cuda = facts.cuda_max if tegra else cuda_max_for_driver(driver)
        facts = replace(facts, driver_version=driver.strip(), cuda_max=cuda, tegra=tegra,
                        arch=facts.arch or ("aarch64" if tegra else None),
                        arch_from=facts.arch_from or ("Jetson (Tegra) boards are arm64" if tegra else ""),
                        problem=None if facts.problem in ("nvml-mismatch", "no-driver") else facts.problem,
                        source="--driver" if not nvidia_smi_text else facts.source + "+--driver")
    if compute_caps:
        for cap in compute_caps:
            try:
                compute_capability(cap)
            except ValueError as exc:
                raise DlboxError(f"--compute-cap {exc}") from None
        gpus = list(facts.gpus)
        for i, cap in enumerate(c.strip() for c in compute_caps):
            if i < len(gpus):
                gpus[i] = replace(gpus[i], compute_cap=cap, cap_from="--compute-cap")
            else:
                gpus.append(Gpu(i, f"GPU {i} (--compute-cap {cap})", cap, None, "--compute-cap"))
        facts = replace(facts, gpus=tuple(gpus))
    return replace(facts, wsl=wsl or facts.wsl)


def effective_cuda_max(facts: DriverFacts) -> tuple[str | None, str | None]:
    """The CUDA ceiling to plan with, and a note when it differs from what was reported.

    A desktop/data-center driver's ceiling is its branch's (driver_branches.json). nvidia-smi
    run where forward-compatibility libraries are loaded (cuda-compat, typically inside an
    nvidia/cuda container: 470.199.02 "reports" 11.7) shows the container's CUDA, which the
    driver itself does not support (https://docs.nvidia.com/deploy/cuda-compatibility/, "Forward
    Compatibility"), so the branch value wins. That
    correction applies only to branches the catalog knows as verified: a Jetson (L4T) driver
    has no desktop branch, and a driver newer than the catalog or on an unverified branch row
    is taken at its word.
    """
    reported = facts.cuda_max
    if not facts.driver_version or facts.tegra:
        return reported, None
    row = _branch_row(facts.driver_version)
    newest = max(r.branch for r in load().driver_branches)
    major = _int(facts.driver_version) or 0
    if row is None or (reported and (major > newest or row.status != "verified")):
        return reported or (row.cuda_max if row else None), None
    if reported is None:
        return row.cuda_max, None
    if vkey(reported) > vkey(row.cuda_max):
        return row.cuda_max, (f"nvidia-smi reported CUDA {reported} but driver {facts.driver_version} is on R{row.branch}, "
                              f"which supports up to CUDA {row.cuda_max} [driver_branches.json {row.branch}]; a higher "
                              "number comes from forward-compatibility libraries (cuda-compat) loaded where nvidia-smi "
                              f"ran, usually inside a container — planning with {row.cuda_max}")
    return reported, None


def host_json(facts: DriverFacts | None) -> dict | None:
    """What was observed or given about the driver, for `plan --json` (every field checkable)."""
    if facts is None:
        return None
    cuda, note = effective_cuda_max(facts)
    row = _branch_row(facts.driver_version) if facts.driver_version and not facts.tegra else None
    if facts.tegra:
        why = "Jetson board: the CUDA its nvidia-smi reports (the desktop branch table does not apply)"
    elif note:
        why = note
    elif row and facts.cuda_max:
        why = f"reported by nvidia-smi; R{row.branch} supports up to CUDA {row.cuda_max} [driver_branches.json {row.branch}]"
    elif row:
        why = f"not reported; R{row.branch} supports up to CUDA {row.cuda_max} [driver_branches.json {row.branch}]"
    elif facts.cuda_max:
        why = "reported by nvidia-smi (driver branch not in the catalog)"
    else:
        why = "unknown"
    problem = None
    if facts.problem:
        cause, fix = PROBLEMS[facts.problem]
        problem = {"id": facts.problem, "cause": cause + (f" ({facts.problem_detail})" if facts.problem_detail else ""),
                   "fix": fix}
    return {
        "source": facts.source,
        "driver": {"version": facts.driver_version, "nvidia_smi_version": facts.smi_version,
                   "cuda_reported": facts.cuda_max, "cuda_allowed": cuda, "cuda_allowed_why": why,
                   "tegra": facts.tegra, "driver_model": facts.driver_model},
        "gpus": [{"index": g.index, "name": g.name, "compute_cap": g.compute_cap, "compute_cap_from": g.cap_from,
                  "memory_mib": g.memory_mib, "mig": g.mig} for g in facts.gpus],
        "arch": facts.arch, "arch_from": facts.arch_from,
        "wsl": facts.wsl,
        "problem": problem,
    }

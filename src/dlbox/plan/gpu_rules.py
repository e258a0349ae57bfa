"""Small pure rules the GPU decision is made of (plan/gpu.py composes them).

Each reads only the catalog and the facts it is given; each row it rests on names its upstream
source in the catalog file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from dlbox.catalog import Catalog, TorchRow, Variant, vkey
from dlbox.catalog.pythons import os_route
from dlbox.host.nvidia_smi import DriverFacts


def allows(cat: Catalog, cuda: str, driver: DriverFacts, cuda_max: str) -> str | None:
    """"full", "minor" (minor-version compatibility) or None for a wheel CUDA on this driver.

    Minor-version compatibility: a toolkit of major X runs on a driver at/above X's floor
    (https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html)."""
    if vkey(cuda) <= vkey(cuda_max):
        return "full"
    major = int(cuda.split(".")[0])
    floor = cat.minor_floor(major)
    if floor is None or major != int(cuda_max.split(".")[0]) or not driver.driver_version or driver.tegra:
        return None
    need = floor.floor_windows if (driver.wsl or driver.driver_model) and floor.floor_windows else floor.floor_linux
    return "minor" if vkey(driver.driver_version) >= vkey(need) else None


def covers(archs: tuple[str, ...], ptx: str | None, cap: str) -> bool:
    """SASS for X.z runs on X.y when z <= y; embedded PTX JITs on any newer GPU."""
    c = vkey(cap)
    if any(vkey(a)[0] == c[0] and vkey(a)[1] <= c[1] for a in archs):
        return True
    return ptx is not None and c > vkey(ptx)


def py_ok(row: TorchRow, py: str) -> bool:
    return vkey(row.python_min) <= vkey(py) <= vkey(row.python_max)


def wheel_ok(v: Variant, asked_cuda: str, *, experimental: bool = False) -> bool:
    """A variant dlbox may choose: asked for by CUDA, or one that exists (verified) and is not
    marked experimental in PyTorch's release matrix (`exists` and `stable` are different facts).
    `experimental` also admits those (for advice, labelled as such)."""
    if asked_cuda != "auto":
        return v.cuda == asked_cuda
    return v.status == "verified" and (experimental or v.stable is not False)


def why_not_chosen(v: Variant) -> str:
    if v.stable is False:
        return "experimental in PyTorch's release matrix"
    return f"{v.status} in the catalog"


def driver_for(cat: Catalog, cuda: str, windows: bool = False) -> str | None:
    """The lowest driver that runs a wheel of this CUDA (minor-version floor where it applies).
    `windows`: the host's driver is a Windows one (WSL 2, nvidia-smi.exe), numbered differently
    ([minor_compat.json] floor_windows, [cuda_driver.json] min_driver_windows); None where unknown."""
    cr = cat.cuda_row(cuda)
    floor = cat.minor_floor(int(cuda.split(".")[0]))
    if floor is not None and (floor.floor_windows if windows else floor.floor_linux):
        return floor.floor_windows if windows else floor.floor_linux
    return full_driver(cat, cuda, windows)


def full_driver(cat: Catalog, cuda: str, windows: bool = False) -> str | None:
    """The lowest driver with full support for this CUDA [cuda_driver.json]."""
    cr = cat.cuda_row(cuda)
    return (cr.min_driver_windows if windows else cr.min_driver_linux) if cr else None


def windows_driver(driver) -> bool:
    """The driver number is a Windows one (WSL 2 or a Windows nvidia-smi.exe table)."""
    return bool(driver is not None and (driver.wsl or driver.driver_model))


@dataclass(frozen=True)
class Cand:
    row: TorchRow
    variant: Variant
    mode: str  # "full" | "minor"


def _rank(c: Cand):
    """Fully supported first (newest CUDA first); among minor-compat, the CUDA closest to the driver's."""
    k = vkey(c.variant.cuda)
    return (1, k) if c.mode == "full" else (0, tuple(-x for x in k))


def candidates(cat, rows, asked_cuda: str, driver, cuda_max, caps, *, refused: list | None = None,
               skipped: list | None = None, experimental: bool = False) -> list[Cand]:
    """Per torch row (in the order given) its best variant this driver and these GPUs run."""
    out = []
    for row in rows:
        picks = []
        for v in row.variants:
            if v.cuda is None or cat.cuda_row(v.cuda) is None:
                continue
            mode = allows(cat, v.cuda, driver, cuda_max)
            if mode is None:
                continue
            if not wheel_ok(v, asked_cuda, experimental=experimental):
                if skipped is not None and asked_cuda == "auto":
                    skipped.append((row.version, v))
                continue
            arch = cat.arch_row(row.version, v.name)
            bad = [c for c in caps if arch and not covers(arch.archs, arch.ptx, c)]
            if bad:
                if refused is not None:
                    refused.append((row.version, v.name, bad))
                continue
            picks.append(Cand(row, v, mode))
        if picks:
            out.append(max(picks, key=_rank))
    return out


def local_pick(cat, req, wheels, ok_variant: Callable[[TorchRow | None, str], bool]):
    """A compatible local torch wheel (air-gapped hosts), newest first."""
    tag = "cp" + req.python.replace(".", "")
    for w in sorted((w for w in wheels if w.name == "torch"),
                    key=lambda w: vkey(w.version.split("+")[0]), reverse=True):
        base, _, label = w.version.partition("+")
        if tag not in w.python_tags or not label or not re.fullmatch(r"[\d.]+", base):
            continue
        if req.torch not in ("auto", base):
            continue
        if ok_variant(cat.torch_row(base), label):
            return w, base, label
    return None


def cuda_tag(cat: Catalog, cuda: str, py: str, nvcc: bool):
    """(image, os, python_install, has_nvcc, why) for an nvidia/cuda tag known to exist, or None.
    The OS whose apt ships `py` (cuda_os_preference) when its tag exists; else, without nvcc, None
    when a Debian release ships `py` (the slim Debian base and the CUDA wheel need no download);
    else the newest OS with a tag, where uv installs `py` (catalog.pythons.os_route)."""
    pref = next((r for r in cat.cuda_os if r.python == py), None)
    tags = cat.tag_rows(cuda)
    row = next((r for r in tags if pref is not None and r.os == pref.os), None)
    install = pref.install if row is not None else None
    if row is None and not nvcc and any(r.python == py and r.os.startswith("debian-") for r in cat.cpu_bases):
        return None   # a Debian slim base ships it (no download, bootstrappable); the wheel brings CUDA
    if row is None:
        newest_first = sorted({r.os for r in cat.cuda_os}, key=lambda o: vkey(o.removeprefix("ubuntu")), reverse=True)
        for os_name in newest_first:
            route = os_route(py, os_name, cat)
            row = next((r for r in tags if r.os == os_name), None) if route else None
            if row is not None:
                install = route.install
                break
    if row is None:
        return None
    if nvcc:
        tag = f"{row.patch}-{row.cudnn_part}-devel-{row.os}" if row.cudnn_part else f"{row.patch}-devel-{row.os}"
    else:
        tag = f"{row.patch}-base-{row.os}"
    why = f"[nvidia_cuda_tags.json {row.patch} {row.os}]"
    return f"nvidia/cuda:{tag}", row.os, install, nvcc, why


def devel_ok(cat: Catalog, c: Cand, py: str) -> bool:
    """A devel image can serve this candidate: it starts (CUDA <= the driver's) and its tag exists."""
    return c.mode == "full" and cuda_tag(cat, c.variant.cuda, py, True) is not None

"""The decision: which base image, Python and torch wheel fit this driver and these GPUs.

`choose()` is pure (it reads only the catalog) so every decision can be replayed from saved
host facts. Each reason names the catalog row it rests on, as `[file key]`.

Rules (each row they read names its upstream source):
- the wheel's CUDA is at most the driver's CUDA ("full"), or in the same major family when
  the driver is at/above that family's minor-version floor ("minor", with a PTX-JIT warning);
- per torch release the newest "full" variant wins over "minor"; the newest torch wins;
- every GPU's compute capability must be covered by the variant's kernels (same major,
  minor <= the GPU's; or the embedded PTX for newer GPUs);
- nvidia/cuda images set NVIDIA_REQUIRE_CUDA=cuda>=X.Y and are refused at start by an older
  driver (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/docker-specialized.html,
  NVIDIA_REQUIRE_*), so a "minor" pick runs on the slim base: the torch wheel carries
  its own CUDA runtime, cuBLAS and cuDNN.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable

from dlbox.catalog import Catalog, TorchRow, Variant, load, vkey
from dlbox.errors import PlanError
from dlbox.host.nvidia_smi import DriverFacts, effective_cuda_max
from dlbox.host.wheels import LocalWheel

WHEEL_INDEX = "https://download.pytorch.org/whl/"


@dataclass(frozen=True)
class TorchRequest:
    torch: str = "auto"  # "auto" | "none" | "2.3.1"
    cuda: str = "auto"  # "auto" | "12.1"
    python: str = "3.11"
    flavor: str = "runtime"  # "runtime" | "devel"
    base: str = "auto"  # "auto" or a user image reference
    gpu: bool = True
    packages: tuple[str, ...] = ()  # lower-case pip names of the project's requirements


@dataclass(frozen=True)
class TorchPick:
    version: str
    variant: str  # "cpu" | "cu126"
    index_url: str | None
    requirement: str  # "torch==2.13.0+cpu"
    find_links: str | None


@dataclass(frozen=True)
class ImageChoice:
    base_image: str
    base_os: str
    python: str
    python_install: str  # "apt:python3" | "apt:python3.11" | "image"
    gpu: bool
    cuda: str | None
    torch: TorchPick | None
    flavor: str
    has_nvcc: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    fallback_from: str | None = None


# -- small rules ------------------------------------------------------------------------

def _allows(cat: Catalog, cuda: str, driver: DriverFacts, cuda_max: str) -> str | None:
    """"full", "minor" (minor-version compatibility) or None for a wheel CUDA on this driver."""
    if vkey(cuda) <= vkey(cuda_max):
        return "full"
    major = int(cuda.split(".")[0])
    floor = cat.minor_floor(major)
    if floor is None or major != int(cuda_max.split(".")[0]) or not driver.driver_version:
        return None
    need = floor.floor_windows if driver.wsl and floor.floor_windows else floor.floor_linux
    return "minor" if vkey(driver.driver_version) >= vkey(need) else None


def _covers(archs: tuple[str, ...], ptx: str | None, cap: str) -> bool:
    """SASS for X.z runs on X.y when z <= y; embedded PTX JITs on any newer GPU."""
    c = vkey(cap)
    if any(vkey(a)[0] == c[0] and vkey(a)[1] <= c[1] for a in archs):
        return True
    return ptx is not None and c > vkey(ptx)


def _py_ok(row: TorchRow, py: str) -> bool:
    return vkey(row.python_min) <= vkey(py) <= vkey(row.python_max)


def _needs_driver(cat: Catalog, row: TorchRow) -> str:
    """The smallest driver that runs some CUDA variant of a torch release, said in words."""
    opts = []
    for v in row.variants:
        cr = v.cuda and cat.cuda_row(v.cuda)
        if not cr or not cr.min_driver_linux:
            continue
        floor = cat.minor_floor(int(v.cuda.split(".")[0]))
        low = floor.floor_linux if floor else cr.min_driver_linux
        opts.append((vkey(low), f"driver >= {low} for {v.name}"
                     + (f" (minor-version compatibility; >= {cr.min_driver_linux} for full CUDA {v.cuda})"
                        if floor else "") + f" [cuda_driver.json {v.cuda}]"))
    return min(opts)[1] if opts else "a driver dlbox has no row for"


# -- candidate search -------------------------------------------------------------------

@dataclass(frozen=True)
class _Cand:
    row: TorchRow
    variant: Variant
    mode: str  # "full" | "minor"


def _gpu_candidates(cat, rows, req, driver, cuda_max, caps, *, auto: bool, refused: list):
    """Yield the best allowed variant per torch row, newest torch first."""
    for row in rows:
        picks = []
        for v in row.variants:
            if v.cuda is None or cat.cuda_row(v.cuda) is None:
                continue
            if req.cuda != "auto" and v.cuda != req.cuda:
                continue
            if auto and req.cuda == "auto" and v.status != "verified":
                continue  # experimental/unverified wheels only when asked for by CUDA
            mode = _allows(cat, v.cuda, driver, cuda_max)
            if mode is None:
                continue
            arch = cat.arch_row(row.version, v.name)
            bad = [c for c in caps if arch and not _covers(arch.archs, arch.ptx, c)]
            if bad:
                refused.append((row.version, v.name, bad))
                continue
            picks.append(_Cand(row, v, mode))
        picks.sort(key=lambda c: (c.mode == "full", vkey(c.variant.cuda)), reverse=True)
        if picks:
            yield picks[0]


def _working_versions(cat: Catalog, caps: list[str], py: str) -> list[str]:
    """torch+variant pairs whose kernels cover every cap (driver ignored), newest first."""
    out = []
    for row in sorted(cat.torch, key=lambda r: vkey(r.version), reverse=True):
        for v in row.variants:
            arch = v.cuda and cat.arch_row(row.version, v.name)
            if arch and _py_ok(row, py) and all(_covers(arch.archs, arch.ptx, c) for c in caps):
                cr = cat.cuda_row(v.cuda)
                out.append(f"{row.version}+{v.name} (driver >= {cr.min_driver_linux if cr else '?'})")
                break
    return out[:4]


def _local_pick(cat, req, wheels, ok_variant: Callable[[TorchRow | None, str], bool]):
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


# -- the decision -----------------------------------------------------------------------

def _slim(cat: Catalog, py: str):
    row = next((r for r in cat.cpu_bases if r.python == py), None)
    if row is None:
        raise PlanError(f"no base image known for Python {py}",
                        fix="use python = " + " or ".join(repr(r.python) for r in cat.cpu_bases))
    return row.image, row.os, "apt:python3"


def _cuda_tag(cat: Catalog, cuda: str, py: str, nvcc: bool):
    """(image, os, python_install, has_nvcc, why) for an nvidia/cuda tag known to exist, or None."""
    pref = next((r for r in cat.cuda_os if r.python == py), None)
    if pref is None:
        return None
    row = next((r for r in cat.tag_rows(cuda) if r.os == pref.os), None)
    if row is None:
        return None
    if nvcc:
        tag = f"{row.patch}-{row.cudnn_part}-devel-{row.os}" if row.cudnn_part else f"{row.patch}-devel-{row.os}"
    else:
        tag = f"{row.patch}-base-{row.os}"
    why = f"[nvidia_cuda_tags.json {row.patch} {row.os}]"
    return f"nvidia/cuda:{tag}", row.os, pref.install, nvcc, why


def _pick(row_version: str, variant: str, local=None) -> TorchPick:
    if local is not None:
        w = local[0]
        return TorchPick(row_version, variant, None, f"torch=={row_version}+{variant}", os.path.dirname(w.path))
    return TorchPick(row_version, variant, WHEEL_INDEX + variant, f"torch=={row_version}+{variant}", None)


def choose(
    req: TorchRequest,
    driver: DriverFacts | None,
    *,
    local_wheels: tuple[LocalWheel, ...] = (),
    image_available: Callable[[str], bool] | None = None,
) -> ImageChoice:
    """Pick base image, Python and torch wheel for `req` on a host described by `driver`.

    Raises PlanError when no torch wheel fits (naming the newest that would and the driver the
    requested one needs) or when a GPU has no kernels in any allowed wheel.
    """
    cat = load()
    if req.flavor not in ("runtime", "devel"):
        raise PlanError(f"flavor {req.flavor!r} is not known", fix='use flavor = "runtime" or "devel"')
    if not re.fullmatch(r"3\.\d+", req.python):
        raise PlanError(f"python {req.python!r} is not a 3.X version", fix='e.g. python = "3.11"')
    reasons: list[str] = []
    warnings: list[str] = []
    deps = sorted({p for p in req.packages} & {d.package for d in cat.build_deps})
    nvcc = req.flavor == "devel" or bool(deps)
    if deps:
        verb = "compiles" if len(deps) == 1 else "compile"
        reasons.append(f"{', '.join(deps)} {verb} CUDA code at install time, so the image needs nvcc "
                       "(a devel image) [cuda_build_deps.json]")
    cuda_max, note = effective_cuda_max(driver) if driver else (None, None)
    if note:
        warnings.append(note)
    gpu = req.gpu and driver is not None and cuda_max is not None
    if not req.gpu:
        reasons.append("no GPU requested (gpu = false / --no-gpu): CPU wheels on a slim base")
    elif driver is None:
        reasons.append("no NVIDIA driver observed on this host: CPU wheels on a slim base")
    elif cuda_max is None:
        warnings.append(f"driver {driver.driver_version} has no CUDA version dlbox can place "
                        "(catalog driver_branches.json); planning CPU wheels")
    caps = [g.compute_cap for g in (driver.gpus if driver else ()) if g.compute_cap]
    if gpu:
        for g in driver.gpus:
            if not g.compute_cap:
                warnings.append(f"compute capability of GPU {g.index} ({g.name}) is unknown, so the "
                                "architecture check skipped it; pass --compute-cap X.Y")
    rows = sorted((r for r in cat.torch if _py_ok(r, req.python)), key=lambda r: vkey(r.version), reverse=True)
    if req.torch not in ("auto", "none"):
        asked = cat.torch_row(req.torch)
        if asked is not None and not _py_ok(asked, req.python):
            raise PlanError(f"torch {req.torch} supports Python {asked.python_min}-{asked.python_max}, "
                            f"not {req.python} [torch.json {req.torch}]",
                            fix=f"set python to {asked.python_max} or pick a newer torch")
        rows = [asked] if asked else []

    # -- torch ------------------------------------------------------------------------------
    pick: TorchPick | None = None
    cand: _Cand | None = None
    if req.torch == "none":
        reasons.append('torch = "none": no torch wheel is installed')
    elif not gpu:
        local = _local_pick(cat, req, local_wheels, lambda row, label: label == "cpu")
        if local:
            w, version, _ = local
            pick = _pick(version, "cpu", local)
            reasons.append(f"torch {version}+cpu taken from the local wheel {w.path} (no index needed; "
                           "air-gapped hosts)")
            if cat.torch_row(version) is None:
                warnings.append(f"torch {version} is not in the catalog (torch.json); trusting the "
                                f"wheel's own label 'cpu'")
            else:
                reasons.append(f"[torch.json {version}] lists a cpu wheel for Python "
                               f"{cat.torch_row(version).python_min}-{cat.torch_row(version).python_max}")
        else:
            row = next((r for r in rows if r.variant("cpu")), None)
            if row is None:
                raise PlanError(f"no torch release in the catalog matches torch={req.torch!r} with "
                                f"Python {req.python}", fix="check `dlbox catalog` for known versions")
            pick = _pick(row.version, "cpu")
            reasons.append(f"torch {row.version}+cpu from {pick.index_url}: newest release with a CPU "
                           f"wheel for Python {req.python} [torch.json {row.version}]")
    else:
        refused: list = []
        local = _local_pick(cat, req, local_wheels, lambda row, label: bool(row and any(
            c.variant.name == label for c in _gpu_candidates(cat, [row], req, driver, cuda_max, caps,
                                                             auto=False, refused=[]))))
        if local:
            w, version, label = local
            cand = next(_gpu_candidates(cat, [cat.torch_row(version)], req, driver, cuda_max, caps,
                                        auto=False, refused=[]))
            pick = _pick(version, label, local)
            reasons.append(f"torch {version}+{label} taken from the local wheel {w.path} "
                           "(air-gapped hosts) [torch.json {version}]".replace("{version}", version))
        else:
            want_full = nvcc  # a devel image must start: its CUDA must be <= the driver's
            gen = list(_gpu_candidates(cat, rows, req, driver, cuda_max, caps, auto=req.torch == "auto",
                                       refused=refused))
            # devel: the image must start (CUDA <= driver) and exist for this Python's OS
            cand = next((c for c in gen if c.mode == "full"
                         and _cuda_tag(cat, c.variant.cuda, req.python, True)), None) if want_full else None
            cand = cand or (next((c for c in gen if c.mode == "full"), None) if want_full else None)
            cand = cand or (gen[0] if gen else None)
            if cand is None:
                _fail(cat, req, driver, cuda_max, caps, refused)
            pick = _pick(cand.row.version, cand.variant.name)
            reasons.append(f"torch {cand.row.version}+{cand.variant.name} from {pick.index_url}: newest "
                           f"release with a wheel this driver ({driver.driver_version}, CUDA <= {cuda_max}) "
                           f"and these GPUs can run [torch.json {cand.row.version}]")
        cr = cat.cuda_row(cand.variant.cuda)
        if cand.mode == "full":
            reasons.append(f"CUDA {cand.variant.cuda} needs driver >= {cr.min_driver_linux}; the driver "
                           f"allows CUDA {cuda_max} [cuda_driver.json {cand.variant.cuda}]")
        else:
            fl = cat.minor_floor(int(cand.variant.cuda.split(".")[0]))
            warnings.append(f"{cand.variant.name} (CUDA {cand.variant.cuda}) is newer than the driver's CUDA "
                            f"{cuda_max}; it runs through minor-version compatibility (driver >= "
                            f"{fl.floor_linux}) [minor_compat.json {fl.major}], but kernels that need "
                            f"PTX JIT newer than the driver can fail — upgrade to >= {cr.min_driver_linux} "
                            f"for full CUDA {cand.variant.cuda} support [cuda_driver.json {cand.variant.cuda}]")
        if caps:
            arch = cat.arch_row(cand.row.version, cand.variant.name)
            if arch:
                reasons.append(f"kernels for {', '.join(arch.archs)}{' + PTX ' + arch.ptx if arch.ptx else ''} "
                               f"cover compute capability {', '.join(sorted(set(caps)))} "
                               f"[torch_arch.json {arch.torch_min}-{arch.torch_max} {arch.variant}]")

    # -- base image -------------------------------------------------------------------------
    cuda = cand.variant.cuda if cand else None
    if gpu and cand is None and req.torch == "none":
        cuda = req.cuda if req.cuda != "auto" else next(
            (r.cuda for r in sorted(cat.cuda_tags, key=lambda r: vkey(r.cuda), reverse=True)
             if vkey(r.cuda) <= vkey(cuda_max) and _cuda_tag(cat, r.cuda, req.python, nvcc)), None)
    preferred = None
    if req.base != "auto":
        reasons.append(f"base image {req.base} kept as given; torch still matched to the driver")
        return ImageChoice(req.base, "unknown", req.python, "image", gpu, cuda, pick, req.flavor,
                           "devel" in req.base, tuple(reasons), tuple(warnings))
    if gpu and cuda and (cand is None or cand.mode == "full"):
        preferred = _cuda_tag(cat, cuda, req.python, nvcc)
        if preferred is None:
            reasons.append(f"no nvidia/cuda tag known for CUDA {cuda} with Python {req.python} "
                           "[nvidia_cuda_tags.json]")
    elif gpu and cand is not None:
        reasons.append(f"nvidia/cuda:{cuda} images require cuda>={cuda} at container start "
                       f"(NVIDIA_REQUIRE_CUDA), which driver {driver.driver_version} refuses "
                       "(\"unsatisfied condition: cuda>=...\"), so the base is slim")
    fallback_from = None
    if preferred and image_available is not None and not image_available(preferred[0]):
        fallback_from = preferred[0]
        reasons.append(f"{preferred[0]} cannot be had (no registry reachable); falling back to a slim "
                       "base plus the torch CUDA wheel, which carries its own CUDA runtime libraries")
        preferred = None
    if preferred:
        image, base_os, install, has_nvcc, why = preferred
        if has_nvcc:
            reasons.append(f"{image}: devel image with nvcc, same CUDA {cuda} as the torch wheel {why}")
        else:
            reasons.append(f"{image}: the small base flavor (cudart only) — the torch wheel carries "
                           f"cuBLAS/cuDNN itself; CUDA {cuda} matches the torch wheel {why}")
        reasons.append(f"Python {req.python} from {install} on {base_os} [images.json os_python]")
    else:
        image, base_os, install = _slim(cat, req.python)
        has_nvcc = False
        reasons.append(f"{image}: slim base for Python {req.python} ({install}) [images.json cpu_base_preference]")
        if gpu and cuda:
            reasons.append(f"the {pick.variant if pick else 'CUDA'} wheel brings the CUDA {cuda} runtime, "
                           "cuBLAS and cuDNN; the host driver is mounted by the NVIDIA runtime")
        if nvcc:
            warnings.append("nvcc will be missing: this base has no CUDA toolkit, so flavor=devel / "
                            "CUDA-compiling dependencies cannot build here")
    return ImageChoice(image, base_os, req.python, install, gpu, cuda if gpu else None, pick,
                       req.flavor, has_nvcc, tuple(reasons), tuple(warnings), fallback_from)


def _fail(cat, req, driver, cuda_max, caps, refused) -> None:
    """Raise the PlanError that says what would work instead."""
    if refused:
        version, variant, bad = refused[0]
        works = _working_versions(cat, bad, req.python)
        here = next(_gpu_candidates(cat, sorted((r for r in cat.torch if _py_ok(r, req.python)),
                                                key=lambda r: vkey(r.version), reverse=True),
                                    TorchRequest(python=req.python), driver, cuda_max, caps,
                                    auto=True, refused=[]), None)
        if here:
            works.insert(0, f"{here.row.version}+{here.variant.name} (works on this driver)")
        raise PlanError(
            f"GPU compute capability {', '.join(sorted(set(bad)))} has no kernels in torch "
            f"{version}+{variant} [torch_arch.json] (failure inside would be 'no kernel image is "
            "available for execution on the device')",
            fix="use one of: " + (", ".join(works) if works else "no catalogued torch covers this GPU"),
        )
    if req.torch not in ("auto", "none") and cat.torch_row(req.torch) is None:
        raise PlanError(f"torch {req.torch} is not in the catalog [torch.json]",
                        fix="run `dlbox catalog` for the known versions, or put its wheel in find_links")
    fallback = TorchRequest(python=req.python)
    every = sorted(cat.torch, key=lambda r: vkey(r.version), reverse=True)
    newest = next(_gpu_candidates(cat, [r for r in every if _py_ok(r, req.python)], fallback, driver,
                                  cuda_max, caps, auto=True, refused=[]), None)
    py_note = ""
    if newest is None:  # maybe an older Python would do
        newest = next(_gpu_candidates(cat, every, fallback, driver, cuda_max, caps, auto=True,
                                      refused=[]), None)
        if newest:
            py_note = f" (needs Python {newest.row.python_min}-{newest.row.python_max})"
    what = f"torch {req.torch}" + (f" with CUDA {req.cuda}" if req.cuda != "auto" else "")
    if req.torch == "auto":
        what = f"torch for Python {req.python}" + (f" with CUDA {req.cuda}" if req.cuda != "auto" else "")
    need = _needs_driver(cat, cat.torch_row(req.torch)) if cat.torch_row(req.torch) else ""
    if req.cuda != "auto" and cat.cuda_row(req.cuda) and cat.cuda_row(req.cuda).min_driver_linux:
        need = f"driver >= {cat.cuda_row(req.cuda).min_driver_linux} for CUDA {req.cuda} [cuda_driver.json {req.cuda}]"
    raise PlanError(
        f"no {what} can run on driver {driver.driver_version} (CUDA <= {cuda_max})" if req.torch == "auto"
        else f"{what} cannot run on driver {driver.driver_version} (CUDA <= {cuda_max})"
        + (f"; it needs {need}" if need else ""),
        fix=(f"newest torch that works here: {newest.row.version}+{newest.variant.name}{py_note}"
             if newest else "no catalogued torch CUDA wheel works on this driver; upgrade the driver or use --no-gpu")
        + (f"; or upgrade the driver ({need})" if need else ""),
    )

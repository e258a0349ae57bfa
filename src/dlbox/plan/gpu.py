"""The decision: which base image, Python and torch wheel fit this driver and these GPUs.

`choose()` is pure (it reads only the catalog) so every decision can be replayed from saved
host facts. Each reason names the catalog row it rests on, as `[file key]`.

`choose()` composes named rules, each returning its reasons: `gpu_gate` (is there a GPU to plan
for, and which CUDA does its driver allow), `pick_torch` (the wheel) and `pick_base` (the image).
The small rules live in plan/gpu_rules.py, the refusals in plan/gpu_advice.py.

Rules (each row they read names its upstream source):
- the wheel's CUDA is at most the driver's CUDA ("full"), or in the same major family when
  the driver is at/above that family's minor-version floor ("minor", with a PTX-JIT warning);
- per torch release a "full" variant wins (newest CUDA); among "minor" ones the CUDA closest to
  the driver's wins; experimental or unverified variants only when asked for by `cuda = "X.Y"`;
  the newest torch wins;
- every GPU's compute capability must be covered by the variant's kernels (same major,
  minor <= the GPU's; or the embedded PTX for newer GPUs);
- nvcc (flavor = "devel" or a CUDA-compiling dependency) needs a devel image the driver starts,
  or the plan is refused with the torch that has one;
- Jetson (L4T) and aarch64 hosts are refused for GPU plans with the route that works;
- nvidia/cuda images set NVIDIA_REQUIRE_CUDA=cuda>=X.Y and are refused at start by an older
  driver (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/docker-specialized.html,
  NVIDIA_REQUIRE_*), so a "minor" pick runs on the slim base: the torch wheel carries
  its own CUDA runtime, cuBLAS and cuDNN.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable

from dlbox.catalog import Catalog, load, vkey
from dlbox.catalog.pythons import cpu_route, os_route, providable
from dlbox.errors import PlanError
from dlbox.host.nvidia_smi import PROBLEMS, DriverFacts, effective_cuda_max
from dlbox.host.wheels import LocalWheel
from dlbox.plan import gpu_advice as advice
from dlbox.plan.gpu_rules import Cand, candidates, cuda_tag, devel_ok, local_pick, py_ok, why_not_chosen

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
    python_install: str  # "apt:python3" | "apt:python3.11" | "uv:3.13.18" (uv-managed) | "image"
    gpu: bool
    cuda: str | None
    torch: TorchPick | None
    flavor: str
    has_nvcc: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    fallback_from: str | None = None


@dataclass
class _Notes:
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _pick(row_version: str, variant: str, local=None) -> TorchPick:
    if local is not None:
        w = local[0]
        return TorchPick(row_version, variant, None, f"torch=={row_version}+{variant}", os.path.dirname(w.path))
    return TorchPick(row_version, variant, WHEEL_INDEX + variant, f"torch=={row_version}+{variant}", None)


def _slim(cat: Catalog, py: str, image_available: Callable[[str], bool] | None = None):
    """(image, os, install, why): the CPU base for Python `py` (catalog.pythons.cpu_route). A base
    that is not Debian (dlbox bootstraps only Debian) and cannot be had gives way to the uv route
    on a Debian base: issue 12 item 4, where no registry answers."""
    route = cpu_route(py, cat)
    if route is None:
        raise PlanError(f"dlbox has no route to Python {py} (no base OS ships it, uv does not install it)",
                        fix="use python = " + " or ".join(repr(p) for p in providable(cat)))
    if image_available is not None and not route.os.startswith("debian-") and not image_available(route.image):
        uv = cpu_route(py, cat, apt=False)
        if uv is not None:
            return uv.image, uv.os, uv.install, (f"{route.image} cannot be had (no registry answers) and only Debian "
                                                 f"bases are bootstrapped from packages: {uv.why}")
    return route.image, route.os, route.install, route.why


# -- rule 1: is there a GPU to plan for -------------------------------------------------------

def driver_major(version: str | None) -> int | None:
    m = re.match(r"(\d+)", version or "")
    return int(m.group(1)) if m else None


def gpu_gate(req: TorchRequest, driver: DriverFacts | None, n: _Notes) -> str | None:
    """The CUDA ceiling to plan GPU wheels with, or None for a CPU plan (the reason is noted).
    Refuses Jetson and aarch64 GPU plans, which have no catalogued wheels, with the route that works."""
    if not req.gpu:
        n.reasons.append("no GPU requested (gpu = false / --no-gpu): CPU wheels on a slim base")
        return None
    if driver is None:
        n.reasons.append("no NVIDIA driver observed on this host: CPU wheels on a slim base")
        return None
    if driver.problem and driver.problem in PROBLEMS and not driver.driver_version:
        cause, fix = PROBLEMS[driver.problem]
        if driver.problem == "tegrastats" and req.base == "auto" and req.torch != "none":
            advice.refuse_jetson(driver)
        n.warnings.append(f"nvidia-smi: {cause}" + (f" ({driver.problem_detail})" if driver.problem_detail else "")
                          + (f" — planning CPU wheels: {fix}" if driver.problem in ("amd", "tegrastats")
                             else f" — planning CPU wheels until it is fixed: {fix}"))
        return None
    if driver.problem in ("nvml-unknown", "nvml-mismatch", "gpu-lost", "no-devices") and driver.driver_version:
        cause, fix = PROBLEMS[driver.problem]
        n.warnings.append(f"the same output also shows a failure — {cause}: {fix}")
    if driver.cuda_na and not driver.tegra and driver.driver_version:
        # vgpu_unlock#30 (a vGPU host driver), libc6-shim#14 (nvidia-smi without libcuda)
        n.warnings.append(f"nvidia-smi printed CUDA Version N/A: where it ran, this driver offers no CUDA (a vGPU "
                          "host/hypervisor driver, or nvidia-smi without the driver's libcuda); planning with "
                          f"the CUDA of its branch — run nvidia-smi where the containers will run (inside the VM "
                          "for vGPU) to be sure")
    if driver.problem == "no-compute-cap-field":
        n.reasons.append(f"nvidia-smi: {PROBLEMS[driver.problem][0]}: {PROBLEMS[driver.problem][1]}")
    if driver.tegra and req.base == "auto" and req.torch != "none":
        advice.refuse_jetson(driver)
    if driver.arch == "aarch64" and req.base == "auto" and req.torch != "none":
        advice.refuse_aarch64(driver, req)
    cuda_max, note = effective_cuda_max(driver)
    if note:
        n.warnings.append(note)
    if cuda_max is None and driver.gpus and not driver.driver_version:
        n.warnings.append(f"this output names {len(driver.gpus)} GPU(s) but not the driver (nvidia-smi -L or a CSV "
                          "without driver_version): planning CPU wheels; give --driver VERSION or the plain "
                          "nvidia-smi output")
        return None
    oldest = min(r.branch for r in load().driver_branches)
    if cuda_max is None and (driver_major(driver.driver_version) or oldest) < oldest and req.torch != "none" \
            and req.base == "auto":
        advice.refuse_old_driver(load(), req, driver, [g.compute_cap for g in driver.gpus if g.compute_cap])
    if cuda_max is None:
        n.warnings.append(f"driver {driver.driver_version} has no CUDA version dlbox can place "
                          "(catalog driver_branches.json); planning CPU wheels")
        return None
    mig = [g for g in driver.gpus if g.mig]
    if mig:
        n.warnings.append(f"MIG mode is on for GPU {', '.join(str(g.index) for g in mig)}: a container sees the MIG "
                          "slices it is given (`nvidia-smi -L` lists their MIG-<uuid>; [run] gpus = \"device=MIG-<uuid>\")")
    if driver.driver_model == "TCC":
        n.warnings.append("the GPU is in TCC mode: WSL 2 (and so Docker Desktop) sees only WDDM-mode GPUs; "
                          "switch with `nvidia-smi -g 0 -dm 0` (WDDM) and reboot")
    if not driver.gpus:
        seen = ("only --driver was given" if driver.source == "--driver"
                else "this nvidia-smi output lists no GPU (cut after its header?)")
        n.warnings.append(f"{seen}, so the wheel's kernels could not be checked against the GPU's compute "
                          "capability: paste the GPU rows, or give --compute-cap X.Y (e.g. 12.0 for an RTX 50 series)")
    for g in driver.gpus:
        if not g.compute_cap:
            n.warnings.append(f"compute capability of GPU {g.index} ({g.name}) is unknown, so the "
                              "architecture check skipped it; pass --compute-cap X.Y")
        elif "unverified" in g.cap_from:
            n.warnings.append(f"compute capability {g.compute_cap} of GPU {g.index} ({g.name}) comes from an "
                              f"unverified name-table row; confirm with `nvidia-smi --query-gpu=compute_cap "
                              "--format=csv` or pass --compute-cap X.Y")
    return cuda_max


# -- rule 2: the torch wheel ------------------------------------------------------------------

def _cpu_wheel(cat, req, rows, local_wheels, n: _Notes) -> TorchPick:
    local = local_pick(cat, req, local_wheels, lambda row, label: label == "cpu")
    if local:
        w, version, _ = local
        n.reasons.append(f"torch {version}+cpu taken from the local wheel {w.path} (no index needed; air-gapped hosts)")
        row = cat.torch_row(version)
        if row is None:
            n.warnings.append(f"torch {version} is not in the catalog (torch.json); trusting the wheel's own label 'cpu'")
        else:
            n.reasons.append(f"[torch.json {version}] lists a cpu wheel for Python {row.python_min}-{row.python_max}")
        return _pick(version, "cpu", local)
    row = next((r for r in rows if r.variant("cpu")), None)
    if row is None:
        raise PlanError(f"no torch release in the catalog matches torch={req.torch!r} with Python {req.python}",
                        fix="check `dlbox catalog` for known versions")
    pick = _pick(row.version, "cpu")
    n.reasons.append(f"torch {row.version}+cpu from {pick.index_url}: newest release with a CPU wheel for "
                     f"Python {req.python} [torch.json {row.version}]")
    return pick


def pick_torch(cat, req, driver, cuda_max, caps, nvcc, rows, local_wheels, n: _Notes):
    """(TorchPick, Cand) for a GPU plan; refuses with the nearest setting that works."""
    local = local_pick(cat, req, local_wheels, lambda row, label: bool(row and any(
        c.variant.name == label for c in candidates(cat, [row], req.cuda, driver, cuda_max, caps))))
    if local:
        w, version, label = local
        cand = next(c for c in candidates(cat, [cat.torch_row(version)], req.cuda, driver, cuda_max, caps)
                    if c.variant.name == label)
        n.reasons.append(f"torch {version}+{label} taken from the local wheel {w.path} (air-gapped hosts) "
                         f"[torch.json {version}]")
        return _pick(version, label, local), cand
    refused: list = []
    skipped: list = []
    gen = candidates(cat, rows, req.cuda, driver, cuda_max, caps, refused=refused, skipped=skipped)
    if nvcc:
        cand = next((c for c in gen if devel_ok(cat, c, req.python)), None)
        if cand is None and (gen or not refused):
            # nothing runs with nvcc here: say which torch / driver gets a devel image (a runtime-only
            # answer, e.g. a minor-compat driver, would still leave the build without nvcc)
            advice.refuse_devel(cat, req, driver, cuda_max, caps)
    else:
        cand = gen[0] if gen else None
    if cand is None:
        if refused:
            advice.refuse_arch(cat, req, driver, cuda_max, caps, refused)
        advice.refuse_driver(cat, req, driver, cuda_max, caps)
    pick = _pick(cand.row.version, cand.variant.name)
    n.reasons.append(f"torch {cand.row.version}+{cand.variant.name} from {pick.index_url}: "
                     + ("the release asked for" if req.torch != "auto" else "newest release")
                     + f" with a wheel this driver ({driver.driver_version}, CUDA <= {cuda_max})"
                     + (" and these GPUs can run" if caps else " can run (no GPU compute capability known)")
                     + f" [torch.json {cand.row.version}]")
    for version, v in skipped:
        if version == cand.row.version and v.name != cand.variant.name:
            n.reasons.append(f"{v.name} also exists for torch {version} but is {why_not_chosen(v)} "
                             f"[torch.json {version}]; chosen only when asked: cuda = \"{v.cuda}\"")
    cr = cat.cuda_row(cand.variant.cuda)
    if cand.mode == "full":
        n.reasons.append(f"CUDA {cand.variant.cuda} needs driver >= {cr.min_driver_linux}; the driver allows CUDA "
                         f"{cuda_max} [cuda_driver.json {cand.variant.cuda}]")
    else:
        fl = cat.minor_floor(int(cand.variant.cuda.split(".")[0]))
        n.reasons.append(f"{cand.variant.name} is the wheel closest to the driver's CUDA {cuda_max} that torch "
                         f"{cand.row.version} ships; no variant of it is fully supported by this driver")
        n.warnings.append(f"{cand.variant.name} (CUDA {cand.variant.cuda}) is newer than the driver's CUDA {cuda_max}; "
                          f"it runs through minor-version compatibility (driver >= {fl.floor_linux}) "
                          f"[minor_compat.json {fl.major}], but kernels that need PTX JIT newer than the driver can "
                          f"fail — upgrade to >= {cr.min_driver_linux} for full CUDA {cand.variant.cuda} support "
                          f"[cuda_driver.json {cand.variant.cuda}]")
    arch = cat.arch_row(cand.row.version, cand.variant.name)
    if caps and arch:
        n.reasons.append(f"kernels for {', '.join(arch.archs)}{' + PTX ' + arch.ptx if arch.ptx else ''} cover "
                         f"compute capability {', '.join(sorted(set(caps)))} "
                         f"[torch_arch.json {arch.torch_min}-{arch.torch_max} {arch.variant}]")
        if arch.status != "verified":
            n.warnings.append(f"the kernel list of torch {cand.row.version}+{cand.variant.name} is {arch.status}, "
                              f"not read from PyTorch's build [torch_arch.json]: verify with `dlbox verify`")
    return pick, cand


# -- rule 3: the base image -------------------------------------------------------------------

def pick_base(cat, req, gpu, cand: Cand | None, cuda, nvcc, driver, image_available, n: _Notes):
    """(image, os, python_install, has_nvcc, fallback_from)."""
    preferred = None
    if gpu and cuda and (cand is None or cand.mode == "full"):
        preferred = cuda_tag(cat, cuda, req.python, nvcc)
        if preferred is None:
            n.reasons.append(f"no nvidia/cuda tag known for CUDA {cuda} with Python {req.python} [nvidia_cuda_tags.json]")
    elif gpu and cand is not None:
        n.reasons.append(f"nvidia/cuda:{cuda} images require cuda>={cuda} at container start (NVIDIA_REQUIRE_CUDA), "
                         "which only data-center GPUs on the long-term branches the image lists may bypass; "
                         "the slim base starts on any driver, and the wheel brings its own CUDA libraries")
    fallback_from = None
    if preferred and image_available is not None and not image_available(preferred[0]):
        fallback_from = preferred[0]
        n.reasons.append(f"{preferred[0]} cannot be had (no registry reachable); falling back to a slim base plus "
                         "the torch CUDA wheel, which carries its own CUDA runtime libraries")
        preferred = None
    if preferred:
        image, base_os, install, has_nvcc, why = preferred
        if has_nvcc:
            n.reasons.append(f"{image}: devel image with nvcc, same CUDA {cuda} as the torch wheel {why}")
        else:
            n.reasons.append(f"{image}: the small base flavor (cudart only) — the torch wheel carries cuBLAS/cuDNN "
                             f"itself; CUDA {cuda} matches the torch wheel {why}")
        n.reasons.append(os_route(req.python, base_os, cat).why)
        return image, base_os, install, has_nvcc, fallback_from
    image, base_os, install, why = _slim(cat, req.python, image_available)
    n.reasons.append(f"slim base {image}: {why}")
    if gpu and cuda:
        n.reasons.append(f"the CUDA {cuda} wheel brings the CUDA runtime, cuBLAS and cuDNN; the host driver is "
                         "mounted by the NVIDIA runtime")
    if nvcc:
        n.warnings.append("nvcc will be missing: "
                          + (f"{fallback_from} cannot be pulled here" if fallback_from else "this base has no CUDA toolkit")
                          + ", so flavor=devel / CUDA-compiling dependencies cannot build until it can")
    return image, base_os, install, False, fallback_from


# -- the decision -----------------------------------------------------------------------------

def choose(
    req: TorchRequest,
    driver: DriverFacts | None,
    *,
    local_wheels: tuple[LocalWheel, ...] = (),
    image_available: Callable[[str], bool] | None = None,
) -> ImageChoice:
    """Pick base image, Python and torch wheel for `req` on a host described by `driver`.

    Raises PlanError when no torch wheel fits, naming the nearest setting that would."""
    cat = load()
    req = _catalogued_pin(req, cat)
    if req.flavor not in ("runtime", "devel"):
        raise PlanError(f"flavor {req.flavor!r} is not known", fix='use flavor = "runtime" or "devel"')
    if not re.fullmatch(r"3\.\d+", req.python):
        raise PlanError(f"python {req.python!r} is not a 3.X version", fix='e.g. python = "3.11"')
    n = _Notes()
    deps = sorted(set(req.packages) & {d.package for d in cat.build_deps})
    nvcc = req.flavor == "devel" or bool(deps)
    if deps:
        verb = "compiles" if len(deps) == 1 else "compile"
        n.reasons.append(f"{', '.join(deps)} {verb} CUDA code at install time, so the image needs nvcc "
                         "(a devel image) [cuda_build_deps.json]")
    cuda_max = gpu_gate(req, driver, n)
    gpu = cuda_max is not None
    caps = [g.compute_cap for g in (driver.gpus if driver else ()) if g.compute_cap]
    rows = sorted((r for r in cat.torch if py_ok(r, req.python)), key=lambda r: vkey(r.version), reverse=True)
    if req.torch not in ("auto", "none"):
        asked = cat.torch_row(req.torch)
        if asked is not None and not py_ok(asked, req.python):
            raise PlanError(f"torch {req.torch} supports Python {asked.python_min}-{asked.python_max}, "
                            f"not {req.python} [torch.json {req.torch}]", fix=_python_fix(req.torch, cat))
        rows = [asked] if asked else []
    pick, cand = None, None
    if req.torch == "none":
        n.reasons.append('torch = "none": no torch wheel is installed')
    elif not gpu:
        pick = _cpu_wheel(cat, req, rows, local_wheels, n)
    else:
        pick, cand = pick_torch(cat, req, driver, cuda_max, caps, nvcc, rows, local_wheels, n)
    cuda = cand.variant.cuda if cand else None
    if gpu and cand is None and req.torch == "none":
        cuda = req.cuda if req.cuda != "auto" else next(
            (r.cuda for r in sorted(cat.cuda_tags, key=lambda r: vkey(r.cuda), reverse=True)
             if vkey(r.cuda) <= vkey(cuda_max) and cuda_tag(cat, r.cuda, req.python, nvcc)), None)
    if req.base != "auto":
        n.reasons.append(f"base image {req.base} kept as given; torch still matched to the driver")
        return ImageChoice(req.base, "unknown", req.python, "image", gpu, cuda, pick, req.flavor,
                           "devel" in req.base, tuple(n.reasons), tuple(n.warnings))
    image, base_os, install, has_nvcc, fallback_from = pick_base(cat, req, gpu, cand, cuda, nvcc, driver,
                                                                 image_available, n)
    return ImageChoice(image, base_os, req.python, install, gpu, cuda if gpu else None, pick,
                       req.flavor, has_nvcc, tuple(n.reasons), tuple(n.warnings), fallback_from)


def _catalogued_pin(req: TorchRequest, cat) -> TorchRequest:
    """`torch = "2.5"` is the release 2.5.0 (PEP 440 pads a release with zeros, as pip's ==2.5 does)."""
    if req.torch in ("auto", "none") or cat.torch_row(req.torch) is not None:
        return req
    from dataclasses import replace

    from packaging.version import InvalidVersion, Version
    try:
        want = Version(req.torch)
    except InvalidVersion:
        return req
    same = next((r.version for r in cat.torch if Version(r.version) == want), None)
    return replace(req, torch=same) if same else req


def _python_fix(torch: str, cat) -> str:
    """A setting that works: a Python dlbox's images have for this torch, else the nearest torch and
    Python pair (never a Python no base image provides: issue 12's 3.8 -> 3.10 -> 3.9 circle)."""
    from dlbox.catalog.pythons import choose_python

    best = choose_python(None, torch=torch, cat=cat)
    if best.python:
        return f'set [env] python = "{best.python}" (a Python dlbox provides that torch {torch} has wheels for)'
    return (best.refusal or "").split(": ", 1)[-1] or "pick a newer torch"

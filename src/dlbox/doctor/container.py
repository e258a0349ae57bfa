"""Judge the raw observations printed by templates/verify_inside.py into checks.

Pure: `checks_from_observations(obs, ...)` returns `dlbox.report.Check`s with the ids
nvidia-smi, torch-import, torch-cuda, gpu-devices, gpu-arch, gpu-matmul, cpu-matmul, nvcc,
shm, ulimits, cuda-vs-driver. Without a GPU the GPU checks are `skip` (or `fail` when
require_gpu). Error text captured inside goes through `explain` for detail and fix.
"""

from __future__ import annotations

from dlbox.catalog import vkey
from dlbox.catalog.explain import explain
from dlbox.host.nvidia_smi import DriverFacts, effective_cuda_max, parse_nvidia_smi
from dlbox.report import Check

SHM_MIN = 1 << 30  # Docker's default 64 MiB /dev/shm starves DataLoader workers; ask for >= 1 GiB


def _explained(cid: str, text: str, default_detail: str, status: str = "fail") -> Check:
    e = explain(text or "")
    if e:
        return Check(cid, status, f"{default_detail}: {e.cause}", e.fix)
    tail = (text or "").strip().splitlines()[-1:] or [""]
    return Check(cid, status, f"{default_detail}{': ' + tail[0] if tail[0] else ''}")


def _covers(arch_list: list[str], cap: str) -> bool:
    major, minor = vkey(cap)
    for a in arch_list:
        kind, _, num = a.partition("_")
        if not num.isdigit():
            continue
        am, an = int(num[:-1]), int(num[-1])
        if (kind == "sm" and am == major and an <= minor) or (kind == "compute" and (am, an) <= (major, minor)):
            return True
    return False


def checks_from_observations(obs: dict, *, driver: DriverFacts | None, expect_nvcc: bool,
                             require_gpu: bool, host_memlock_hard: int | None | bool = False) -> list[Check]:
    """Checks for one container from its observation dict (see verify_inside.py)."""
    out: list[Check] = []
    smi = obs.get("nvidia_smi") or {}
    torch = obs.get("torch") or {}
    gpu_expected = require_gpu or (driver is not None and driver.driver_version is not None)
    missing = "fail" if require_gpu else "skip"
    why_skip = "no GPU on this host" if driver is None else "no GPU visible in the container"

    # nvidia-smi inside
    if smi.get("present") and smi.get("returncode") == 0:
        inside = parse_nvidia_smi(smi.get("output", ""))
        out.append(Check("nvidia-smi", "ok", f"driver {inside.driver_version}, CUDA {inside.cuda_max or 'N/A'}, "
                                             f"{len(inside.gpus)} GPU(s)"))
    elif smi.get("present"):
        out.append(_explained("nvidia-smi", smi.get("output", ""), "nvidia-smi failed inside",
                              "fail" if gpu_expected else "skip"))
    else:
        out.append(Check("nvidia-smi", "fail" if require_gpu else ("warn" if gpu_expected else "skip"),
                         "nvidia-smi not present inside" + ("" if gpu_expected else f" ({why_skip})"),
                         "run with --gpus all (the NVIDIA runtime mounts nvidia-smi)" if gpu_expected else ""))

    # torch
    if not torch.get("present"):
        err = torch.get("error", "")
        out.append(Check("torch-import", "fail" if err else "skip",
                         f"import torch failed: {err}" if err else "torch not installed in this image"))
    else:
        out.append(Check("torch-import", "ok", f"torch {torch.get('version')} (CUDA {torch.get('cuda') or 'none: CPU build'})"))
    cpu_ok = torch.get("cpu_matmul_ok")
    if torch.get("present"):
        out.append(Check("cpu-matmul", "ok" if cpu_ok else "fail",
                         "64x64 matmul on the CPU is correct" if cpu_ok else f"CPU matmul wrong or failed {torch.get('cpu_matmul_error', '')}".strip()))
    else:
        out.append(Check("cpu-matmul", "skip", "torch not installed"))

    if not torch.get("present"):
        for cid in ("torch-cuda", "gpu-devices", "gpu-arch", "gpu-matmul"):
            out.append(Check(cid, missing, "torch not installed"))
    elif not torch.get("cuda_available"):
        if torch.get("cuda_error"):
            out.append(_explained("torch-cuda", torch["cuda_error"], "torch.cuda failed", missing if not gpu_expected else "fail"))
        elif not torch.get("cuda"):
            out.append(Check("torch-cuda", missing, f"torch is a CPU build ({why_skip})" if not require_gpu else "torch is a CPU build",
                             "" if not require_gpu else "re-plan with a GPU (`dlbox plan`) so a CUDA wheel is chosen"))
        else:
            out.append(Check("torch-cuda", "fail" if gpu_expected else "skip",
                             f"torch.cuda.is_available() is False ({why_skip})"))
        for cid in ("gpu-devices", "gpu-arch", "gpu-matmul"):
            out.append(Check(cid, missing, why_skip))
    else:
        devs = torch.get("devices") or []
        out.append(Check("torch-cuda", "ok", f"torch.cuda.is_available() with CUDA {torch.get('cuda')}"))
        out.append(Check("gpu-devices", "ok" if devs else "fail",
                         f"{len(devs)} device(s): " + ", ".join(f"{d['name']} ({d['capability']})" for d in devs)))
        arch = torch.get("arch_list") or []
        bad = [d for d in devs if not _covers(arch, d["capability"])]
        out.append(Check("gpu-arch", "fail" if bad else "ok",
                         (f"no kernels for {', '.join(d['name'] + ' sm_' + d['capability'] for d in bad)} in {' '.join(arch)}"
                          if bad else f"wheel arch list {' '.join(arch)} covers every device"),
                         explain("no kernel image is available for execution on the device").fix if bad else ""))
        if torch.get("cuda_error"):
            out.append(_explained("gpu-matmul", torch["cuda_error"], "GPU matmul failed"))
        elif torch.get("gpu_matmul_ok"):
            out.append(Check("gpu-matmul", "ok", f"GPU matmul matches the CPU (max diff {torch.get('gpu_matmul_max_abs_diff'):.2e})"))
        else:
            out.append(Check("gpu-matmul", "fail", f"GPU matmul differs from the CPU (max diff {torch.get('gpu_matmul_max_abs_diff')})"))

    # nvcc
    nvcc = obs.get("nvcc") or {}
    if nvcc.get("present"):
        out.append(Check("nvcc", "ok", "nvcc present: " + (nvcc.get("output", "").strip().splitlines() or [""])[-1]))
    else:
        out.append(Check("nvcc", "fail" if expect_nvcc else "ok",
                         "nvcc missing but this plan needs it (devel flavor or a CUDA-compiling dependency)" if expect_nvcc
                         else "no nvcc: expected for a runtime/base image (nvcc is only in devel images)",
                         'set flavor = "devel"' if expect_nvcc else ""))

    # /dev/shm and ulimits
    shm = obs.get("shm_bytes")
    if shm is None:
        out.append(Check("shm", "warn", "/dev/shm not mounted"))
    else:
        out.append(Check("shm", "ok" if shm >= SHM_MIN else "warn", f"/dev/shm is {shm // (1 << 20)} MiB",
                         "" if shm >= SHM_MIN else "run with --shm-size=8g or --ipc=host (DataLoader workers share memory there)"))
    lim = obs.get("ulimits") or {}
    fmt = lambda v: "unlimited" if v is None else str(v)
    memlock = (lim.get("memlock") or {}).get("soft", 0)
    detail = ", ".join(f"{k} {fmt((v or {}).get('soft'))}" for k, v in lim.items())
    low = memlock is not None and memlock < (64 << 20)
    fix = "run with --ulimit memlock=-1 --ulimit stack=67108864 (NCCL/pinned memory)"
    if low and host_memlock_hard not in (False, None):
        # the host itself caps memlock (a locked-down VM or server): Docker cannot give more
        fix = (f"the host's memlock hard limit is {host_memlock_hard // (1 << 20)} MiB, so containers cannot get more: "
               "raise it on the host (LimitMEMLOCK=infinity for dockerd, /etc/security/limits.conf)")
    out.append(Check("ulimits", "warn" if low else "ok", detail, fix if low else ""))

    # the CUDA the driver allows against the CUDA in the image
    img_cuda = torch.get("cuda") or (obs.get("env") or {}).get("CUDA_VERSION")
    cuda_max = effective_cuda_max(driver)[0] if driver else None
    if not img_cuda or not cuda_max:
        out.append(Check("cuda-vs-driver", missing if not (img_cuda and driver) else "skip",
                         "no CUDA in the image" if not img_cuda else why_skip))
    else:
        short = ".".join(img_cuda.split(".")[:2])
        if vkey(short) <= vkey(cuda_max):
            out.append(Check("cuda-vs-driver", "ok", f"image CUDA {short} <= driver CUDA {cuda_max}"))
        elif short.split(".")[0] == cuda_max.split(".")[0]:
            out.append(Check("cuda-vs-driver", "warn", f"image CUDA {short} > driver CUDA {cuda_max}: runs through "
                             "minor-version compatibility; PTX JIT of newer code can fail", "upgrade the driver"))
        else:
            out.append(Check("cuda-vs-driver", "fail", f"image CUDA {short} needs a newer driver than CUDA {cuda_max}",
                             explain("CUDA driver version is insufficient for CUDA runtime version").fix))
    return out

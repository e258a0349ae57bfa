"""Turn the error texts users actually hit into one-line cause and fix.

Texts recorded from real runs (fixtures with their sources in tests/fixtures/errors/). `explain` returns the
first matching explanation, or None for text it does not recognise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Explanation:
    id: str
    cause: str
    fix: str


def _no_runtime(m: re.Match) -> Explanation:
    return Explanation(
        "no-gpu-runtime",
        "Docker has no NVIDIA runtime: the NVIDIA Container Toolkit is missing or not registered "
        "with this Docker engine",
        "install nvidia-container-toolkit, then `sudo nvidia-ctk runtime configure --runtime=docker "
        "&& sudo systemctl restart docker`",
    )


def _requirement(m: re.Match) -> Explanation:
    need = m.group(1)
    return Explanation(
        "cuda-requirement",
        f"the image requires CUDA >= {need} (NVIDIA_REQUIRE_CUDA) but the host driver supports an "
        "older CUDA, so the container was refused at start",
        f"use an image/torch built for the driver's CUDA (`dlbox plan` picks one), or upgrade the "
        f"driver to one that reports CUDA >= {need}; NVIDIA_DISABLE_REQUIRES=true only skips the check",
    )


def _insufficient(m: re.Match) -> Explanation:
    return Explanation(
        "driver-insufficient",
        "the CUDA runtime in the container is newer than the host driver supports "
        "(cudaErrorInsufficientDriver = 35)",
        "re-plan for this driver (`dlbox plan`) so the torch wheel's CUDA is <= the driver's, or "
        "upgrade the driver",
    )


def _too_old(m: re.Match) -> Explanation:
    n = int(m.group(1))
    cuda = f"{n // 1000}.{(n % 1000) // 10}"  # PyTorch prints the driver's CUDA as 11040 → 11.4
    return Explanation(
        "driver-too-old",
        f"the NVIDIA driver supports only CUDA {cuda} (found version {n}), older than the CUDA "
        "torch was built with",
        f"install a torch wheel for CUDA <= {cuda} (`dlbox plan --cuda {cuda}` or let `dlbox plan` "
        "choose), or upgrade the driver",
    )


def _nvml(m: re.Match) -> Explanation:
    return Explanation(
        "nvml-unknown",
        "the container lost access to the GPU device nodes: with the systemd cgroup driver a "
        "`systemctl daemon-reload` (or a package update) revokes them from running containers",
        "restart the container; for good: `sudo nvidia-ctk system create-dev-char-symlinks "
        "--create-all` or set `\"exec-opts\": [\"native.cgroupdriver=cgroupfs\"]` in "
        "/etc/docker/daemon.json",
    )


def _no_kernel(m: re.Match) -> Explanation:
    return Explanation(
        "no-kernel-image",
        "the torch wheel (or an extension) has no kernels for this GPU's compute capability",
        "run `dlbox plan --compute-cap X.Y` to pick a torch/CUDA variant whose kernels cover this "
        "GPU (e.g. Blackwell needs torch >= 2.7 with cu128+; Maxwell/Pascal/Volta need cu126)",
    )


def _ngc(m: re.Match) -> Explanation:
    return Explanation(
        "ngc-compat-unavailable",
        "the NGC container was built for a newer driver branch and forward compatibility is not "
        "available on this GPU",
        "use an NGC release whose minimum driver is <= the host's (`dlbox catalog --driver "
        "VERSION`), or upgrade the driver; within the same CUDA major the banner can be harmless",
    )


_RULES: tuple[tuple[re.Pattern, Callable[[re.Match], Explanation]], ...] = (
    (re.compile(r'could not select device driver "[^"]*" with capabilities: \[\[gpu\]\]'), _no_runtime),
    (re.compile(r"unsatisfied condition: cuda\s*>=\s*([0-9]+\.[0-9]+)"), _requirement),
    (re.compile(r"CUDA driver version is insufficient for CUDA runtime version"), _insufficient),
    (re.compile(r"NVIDIA driver on your system is too old \(found version (\d+)\)"), _too_old),
    (re.compile(r"Failed to initialize NVML: Unknown Error"), _nvml),
    (re.compile(r"no kernel image is available for execution on the device"), _no_kernel),
    (re.compile(r"compatibility mode is UNAVAILABLE"), _ngc),
)


def explain(text: str) -> Explanation | None:
    """One-line cause and fix for a known GPU/container error text, else None."""
    for pattern, make in _RULES:
        m = pattern.search(text or "")
        if m:
            return make(m)
    return None

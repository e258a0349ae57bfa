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


# What a failing or foreign `nvidia-smi`-like output means (host/nvidia_smi.py names the id):
# id -> (cause, fix). Sources: the fixtures in tests/fixtures/nvidia-smi (SOURCES.md).
NVIDIA_SMI_PROBLEMS = {
    "nvml-mismatch": ("the NVIDIA kernel module and its user-space libraries have different versions "
                      "(usually an unattended driver upgrade without a reboot)",
                      "reboot, or reload the module: sudo rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia "
                      "&& sudo modprobe nvidia; then run nvidia-smi again"),
    "no-devices": ("the driver is loaded but sees no GPU (GPU fallen off the bus, a passthrough VM without the "
                   "device, or a GPU this driver does not support)",
                   "check `lspci | grep -i nvidia` and `sudo dmesg | grep -i nvrm`; a brand-new GPU may need a newer "
                   "(open) driver"),
    "no-driver": ("nvidia-smi cannot talk to the NVIDIA driver (not installed or not loaded)",
                  "install the driver (`dlbox setup nvidia` shows how) or load it with sudo modprobe nvidia"),
    "amd": ("this is rocm-smi output: an AMD GPU. dlbox plans NVIDIA CUDA containers only for now",
            "plan with --no-gpu, or use AMD's rocm/pytorch images directly"),
    "tegrastats": ("this is tegrastats output from a Jetson: it names no driver or CUDA version",
                   "run nvidia-smi on JetPack 6+ (or give --driver), and use NVIDIA's L4T containers "
                   "(nvcr.io/nvidia/l4t-jetpack) for CUDA on Jetson"),
    "nvml-unknown": ("NVML could not reach the GPU (\"Failed to initialize NVML: Unknown Error\"): inside a container "
                     "it lost access to the GPU device nodes (with the systemd cgroup driver a `systemctl "
                     "daemon-reload` or a package update revokes them from running containers)",
                     "restart the container, or run nvidia-smi on the host itself and save that output; for good: "
                     "`sudo nvidia-ctk system create-dev-char-symlinks --create-all` or set "
                     "`\"exec-opts\": [\"native.cgroupdriver=cgroupfs\"]` in /etc/docker/daemon.json"),
    "no-nvml-lib": ("nvidia-smi cannot load the driver's libnvidia-ml.so: the driver's user-space part is missing "
                    "(driver not installed, or a container started without the NVIDIA runtime)",
                    "run nvidia-smi on the host itself; there install the driver (`dlbox setup nvidia` shows how) "
                    "or run sudo ldconfig; containers need --gpus all with the NVIDIA runtime"),
    "gpu-lost": ("the driver has lost a GPU (\"Unable to determine the device handle\" / \"GPU is lost\": fallen off "
                 "the bus, overheating, power or a riser)",
                 "reboot (reseat or cool the card if it recurs); `sudo dmesg | grep -i xid` names the error; then "
                 "run nvidia-smi again"),
    "no-compute-cap-field": ("this driver's nvidia-smi has no compute_cap query field (added in R510)",
                             "compute capability falls back to the GPU-name table; give --compute-cap X.Y to be sure"),
}


def _smi_problem(pid: str):
    def make(m: re.Match) -> Explanation:
        cause, fix = NVIDIA_SMI_PROBLEMS[pid]
        version = m.groupdict().get("v")
        return Explanation(pid, cause + (f" (NVML library version {version})" if version else ""), fix)
    return make


_RULES: tuple[tuple[re.Pattern, Callable[[re.Match], Explanation]], ...] = (
    (re.compile(r'could not select device driver "[^"]*" with capabilities: \[\[gpu\]\]'), _no_runtime),
    (re.compile(r"unsatisfied condition: cuda\s*>=\s*([0-9]+\.[0-9]+)"), _requirement),
    (re.compile(r"CUDA driver version is insufficient for CUDA runtime version"), _insufficient),
    (re.compile(r"NVIDIA driver on your system is too old \(found version (\d+)\)"), _too_old),
    (re.compile(r"Failed to initialize NVML: Unknown Error"), _smi_problem("nvml-unknown")),
    (re.compile(r"no kernel image is available for execution on the device"), _no_kernel),
    (re.compile(r"compatibility mode is UNAVAILABLE"), _ngc),
    (re.compile(r"Driver/library version mismatch(?:\s*\nNVML library version:\s*(?P<v>[0-9.]+))?"),
     _smi_problem("nvml-mismatch")),
    (re.compile(r"No devices were found"), _smi_problem("no-devices")),
    (re.compile(r"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"),
     _smi_problem("no-driver")),
    (re.compile(r"couldn't find libnvidia-ml\.so|Failed to initialize NVML: could not load NVML library"),
     _smi_problem("no-nvml-lib")),
    (re.compile(r"Unable to determine the device handle for GPU"), _smi_problem("gpu-lost")),
)


def explain(text: str) -> Explanation | None:
    """One-line cause and fix for a known GPU/container error text, else None."""
    for pattern, make in _RULES:
        m = pattern.search(text or "")
        if m:
            return make(m)
    return None

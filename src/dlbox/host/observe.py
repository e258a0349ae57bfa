"""Live probes of this machine. Each is cheap; `docker=True` adds one `docker info`."""

from __future__ import annotations

import glob
import os
import resource
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

from dlbox.host import EngineFacts, Host, Limits
from dlbox.host.netconf import observe_net

CDI_DIRS = ("/etc/cdi", "/var/run/cdi")


def _limit(which: int) -> int | None:
    hard = resource.getrlimit(which)[1]
    return None if hard == resource.RLIM_INFINITY else hard


def observe_limits() -> Limits:
    return Limits(memlock_hard=_limit(resource.RLIMIT_MEMLOCK), stack_hard=_limit(resource.RLIMIT_STACK))


def is_wsl() -> bool:
    try:
        return "microsoft" in Path("/proc/sys/kernel/osrelease").read_text().lower()
    except OSError:
        return False


def cdi_has_gpu(dirs: tuple[str, ...] = CDI_DIRS) -> bool:
    for d in dirs:
        for f in glob.glob(os.path.join(d, "*.json")) + glob.glob(os.path.join(d, "*.yaml")):
            try:
                if "nvidia.com/gpu" in Path(f).read_text(errors="replace"):
                    return True
            except OSError:
                continue
    return False


def observe_driver(timeout: float = 10.0):
    """DriverFacts from nvidia-smi; None when there is no nvidia-smi at all.

    A failing nvidia-smi (NVML mismatch, no devices, driver not loaded) still gives facts, with
    `problem` naming what went wrong. Compute capability is asked of the driver with a CSV
    query read by its header (`compute_cap` exists from R510; older drivers fall back to names).
    """
    exe = shutil.which("nvidia-smi") or ("/usr/lib/wsl/lib/nvidia-smi" if os.path.exists("/usr/lib/wsl/lib/nvidia-smi") else None)
    if not exe:
        return None
    from dlbox.host.nvidia_smi import parse_nvidia_smi

    try:
        table = subprocess.run([exe], capture_output=True, timeout=timeout, text=True)
    except (OSError, subprocess.TimeoutExpired):
        return None
    facts = parse_nvidia_smi(table.stdout + table.stderr)
    if table.returncode != 0:
        return replace(facts, wsl=is_wsl(), source="nvidia-smi")
    for fields in ("index,name,compute_cap,memory.total", "index,name,memory.total"):
        try:
            csv = subprocess.run([exe, f"--query-gpu={fields}", "--format=csv,nounits"],
                                 capture_output=True, timeout=timeout, text=True)
        except (OSError, subprocess.TimeoutExpired):
            break
        if csv.returncode == 0 and csv.stdout.strip():
            facts = parse_nvidia_smi(table.stdout + "\n" + csv.stdout)  # CSV caps merge onto the table's GPUs
            break
    return replace(facts, wsl=is_wsl(), source="nvidia-smi")


def observe_engine(docker) -> EngineFacts:
    return EngineFacts.from_info(docker.info())


def observe(*, docker=None, find_links: tuple[str, ...] | None = None) -> Host:
    """Observe this machine. `docker` (an engine.Docker) adds engine facts; None skips Docker."""
    from dlbox.host.wheels import scan_local_wheels

    net = observe_net()
    links = net.find_links if find_links is None else find_links
    return Host(
        driver=observe_driver(),
        engine=observe_engine(docker) if docker is not None else None,
        cdi_gpu=cdi_has_gpu(),
        limits=observe_limits(),
        net=net,
        uid=os.getuid(),
        gid=os.getgid(),
        wsl=is_wsl(),
        local_wheels=scan_local_wheels(list(links)),
        arch=machine_arch(),
    )


def machine_arch() -> str:
    import platform

    m = platform.machine().lower()
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(m, m)

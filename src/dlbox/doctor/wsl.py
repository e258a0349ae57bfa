"""WSL2 checks: the kernel, libcuda from the Windows driver, projects on /mnt/c."""

from __future__ import annotations

import re

from dlbox.host.facts import Facts
from dlbox.report import Check

LIBCUDA = "/usr/lib/wsl/lib/libcuda.so.1"  # only .so.1 is guaranteed there (microsoft/WSL#8587)


def check_wsl(facts: Facts) -> list[Check]:
    if facts.wsl is None:
        return [Check("wsl", "skip", "not WSL")]
    release = (facts.sys.read_text("/proc/sys/kernel/osrelease") or "").strip()
    if facts.wsl == "WSL1":
        return [Check("wsl", "fail", f"WSL1 kernel {release}: no Docker engine, no GPU",
                      "in PowerShell: wsl --set-version <distro> 2")]
    return [Check("wsl", "ok", f"WSL2 kernel {release}".strip()), check_libcuda(facts), check_project_dir(facts)]


def check_libcuda(facts: Facts) -> Check:
    if facts.sys.exists(LIBCUDA):
        return Check("wsl.libcuda", "ok", f"{LIBCUDA} (from the Windows driver)")
    return Check("wsl.libcuda", "warn", f"no {LIBCUDA}: the Windows NVIDIA driver does not expose CUDA to WSL",
                 "install or update the NVIDIA driver on Windows (not inside WSL), then `wsl --shutdown`")


def check_project_dir(facts: Facts) -> Check:
    cwd = facts.sys.cwd()
    if re.match(r"^/mnt/[a-z](/|$)", cwd):
        # Bind mounts from the Windows drives go through 9p: the tutorials saw model loading crawl.
        return Check("wsl.project-dir", "warn", f"project on the Windows drive ({cwd}): slow bind mounts",
                     "move the project into the WSL filesystem, e.g. `cp -r . ~/project && cd ~/project`")
    return Check("wsl.project-dir", "ok", f"{cwd} is on the WSL filesystem")

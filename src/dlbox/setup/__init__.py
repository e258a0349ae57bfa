"""`dlbox setup TARGET`: idempotent fixers for what `dlbox doctor` finds.

`run_setup(target, sysroot, opts)` runs the steps of TARGET (docker, nvidia, proxy,
mirrors, or all) and returns the exit status: 0 when every step left the host right.
"""

from __future__ import annotations

from rich.console import Console

from dlbox.errors import HostError
from dlbox.host.sysroot import SysRoot
from dlbox.setup.steps import Options, safe_run_step

TARGETS = ("docker", "nvidia", "proxy", "mirrors")


def _planners():
    from dlbox.setup.engine import plan_docker, plan_nvidia
    from dlbox.setup.mirrors import plan_mirrors
    from dlbox.setup.proxy import plan_proxy

    return {"docker": plan_docker, "nvidia": plan_nvidia, "proxy": plan_proxy, "mirrors": plan_mirrors}


def run_setup(target: str, sysroot: SysRoot, opts: Options, console: Console | None = None) -> int:
    console = console or Console()
    if target not in (*TARGETS, "all"):
        raise HostError(f"unknown setup target {target!r}", fix=f"one of: {', '.join(TARGETS)}, all")
    planners = _planners()
    if target == "all":
        # proxy/mirrors only when given something to set; the GPU step only with a driver.
        names = ["docker"] + (["proxy"] if opts.url else []) \
            + (["mirrors"] if (opts.apt_mirror or opts.pip_index or opts.registry_mirrors) else [])
        from dlbox.host.facts import Facts

        if Facts(sysroot).smi.ok:
            names.append("nvidia")
        else:
            console.print("nvidia: skipped, no NVIDIA driver on this host")
    else:
        names = [target]
    worst = 0
    for name in names:
        plan = planners[name]
        worst = max(worst, safe_run_step(lambda p=plan: p(sysroot, opts), name, sysroot, opts, console))
    return worst


__all__ = ["Options", "run_setup", "TARGETS"]

"""`dlbox doctor`: every host check, in the order problems cascade.

`run_checks(sysroot, deep=)` returns a list of `dlbox.report.Check`; it never raises for a
host problem (that is what a `fail` line is for) and never prints.
"""

from __future__ import annotations

from dlbox.doctor import engine, nvidia, proxy, resources, wsl
from dlbox.engine.docker import info_probe
from dlbox.host.facts import Facts
from dlbox.host.sysroot import SysRoot
from dlbox.report import Check


def run_checks(sysroot: SysRoot | None = None, *, deep: bool = False) -> list[Check]:
    facts = Facts(sysroot or SysRoot(engine_info=info_probe))
    checks = [
        engine.check_client(facts),
        engine.check_daemon_json(facts),
        engine.check_engine(facts),
        engine.check_desktop(facts),
        engine.check_snap(facts),
        *wsl.check_wsl(facts),
        nvidia.check_driver(facts),
        nvidia.check_gpus(facts),
        nvidia.check_toolkit(facts),
        nvidia.check_runtime(facts),
        nvidia.check_restarted(facts),
        nvidia.check_nvml_trap(facts),
        proxy.check_proxies(facts),
        proxy.check_no_proxy(facts),
        proxy.check_secret_files(facts),
        resources.check_mirrors(facts),
        resources.check_disk(facts),
        resources.check_memlock(facts),
        resources.check_shm(facts),
    ]
    if deep:
        checks.append(nvidia.check_deep(facts))
    return checks


__all__ = ["run_checks", "Facts"]

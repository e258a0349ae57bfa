"""The planner's `Host`, built from the one set of probes (`host.facts.Facts` over a `SysRoot`).

`observe(SysRoot())` is this machine; `observe(SysRoot(DIR))` replays a saved root, exactly as
`doctor --root DIR` does; a server is a root captured over SSH (`host.remote.observe_server`).
The engine's `docker info` comes from the caller (the engine room runs docker), or from the
saved root's `docker-info` output.
"""

from __future__ import annotations

from dataclasses import replace

from dlbox.host import EngineFacts, Host
from dlbox.host.facts import Facts
from dlbox.host.netconf import observe_net
from dlbox.host.sysroot import SysRoot
from dlbox.host.wheels import scan_local_wheels


def _saved_engine(facts: Facts) -> dict | None:
    """A saved root's `docker info`, when one was saved and the engine answered."""
    return None if facts.sys.live else facts.info


def observe(root: SysRoot | None = None, *, engine_info: dict | None = None,
            find_links: tuple[str, ...] | None = None, server: str | None = None) -> Host:
    """Observe the host under ROOT (default: this machine). `engine_info` is its `docker info`
    (None: the engine is not asked). `find_links`: the directories to scan for local torch wheels
    (None: the ones pip is configured with)."""
    facts = Facts(root or SysRoot())
    sysroot = facts.sys
    info = engine_info if engine_info is not None else _saved_engine(facts)
    env = dict(sysroot.env())
    net = observe_net(env, sysroot.root)
    links = net.find_links if find_links is None else find_links
    uid, gid = sysroot.ids()
    driver = facts.driver
    if driver is not None and server:
        driver = replace(driver, source=f"nvidia-smi on {server}")
    return Host(
        driver=driver,
        engine=EngineFacts.from_info(info) if info is not None else None,
        cdi_gpu=facts.cdi_gpu,
        limits=facts.limits,
        net=net,
        uid=uid,
        gid=gid,
        wsl=facts.wsl is not None,
        local_wheels=scan_local_wheels(list(links), str(sysroot.root)),
        home=None if sysroot.live else sysroot.home(),
        server=server,
        arch=facts.arch,
    )

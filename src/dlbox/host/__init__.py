"""Host: what was observed about this machine, as plain immutable data.

`host.observe.observe(SysRoot…)` builds it from the one set of probes (this machine, a saved
root, or a server over SSH); every field can also be given directly (tests, `plan --driver …`),
so every decision downstream can be replayed on a machine without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlbox.host.nvidia_smi import DriverFacts
from dlbox.host.wheels import LocalWheel


@dataclass(frozen=True)
class EngineFacts:
    """The few `docker info` fields dlbox needs (tolerant of everything else)."""

    server_version: str = ""
    runtimes: tuple[str, ...] = ()
    default_runtime: str = ""
    cgroup_driver: str = ""
    os: str = ""
    docker_root: str = ""
    cdi_spec_dirs: tuple[str, ...] = ()

    @property
    def nvidia_runtime(self) -> bool:
        return "nvidia" in self.runtimes

    @classmethod
    def from_info(cls, info: dict) -> "EngineFacts":
        runtimes = info.get("Runtimes") or {}
        return cls(
            server_version=str(info.get("ServerVersion", "")),
            runtimes=tuple(sorted(runtimes)),
            default_runtime=str(info.get("DefaultRuntime", "")),
            cgroup_driver=str(info.get("CgroupDriver", "")),
            os=str(info.get("OperatingSystem", "")),
            docker_root=str(info.get("DockerRootDir", "")),
            cdi_spec_dirs=tuple(info.get("CDISpecDirs") or ()),
        )


@dataclass(frozen=True)
class NetFacts:
    """Proxy, CA bundle, pip index and find-links as the host's own tools are configured."""

    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: tuple[str, ...] = ()
    ca_bundle: str | None = None       # the bundle pip/requests on this host trust
    ca_bundle_from: str = ""           # which setting said so
    pip_index: str | None = None       # http(s) only
    pip_extra_index: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()   # local directories only
    proxy_loopback_only: bool = False  # the proxy listens on 127.0.0.1 only (containers can't reach it)
    python_mirror: str | None = None   # UV_PYTHON_INSTALL_MIRROR (python-build-standalone downloads), http(s) only


@dataclass(frozen=True)
class Limits:
    memlock_hard: int | None = None    # bytes; None = unlimited
    stack_hard: int | None = None


@dataclass(frozen=True)
class Host:
    driver: DriverFacts | None = None
    engine: EngineFacts | None = None
    cdi_gpu: bool = False              # a CDI spec naming nvidia.com/gpu exists
    limits: Limits = field(default_factory=Limits)
    net: NetFacts = field(default_factory=NetFacts)
    uid: int = 1000
    gid: int = 1000
    wsl: bool = False
    local_wheels: tuple[LocalWheel, ...] = ()
    home: str | None = None            # for ~ in mounts; None = this process's HOME
    server: str | None = None          # "user@host" when these facts are a remote server's
    arch: str | None = None            # "x86_64" | "aarch64" (platform.machine, normalised)

    @property
    def can_give_gpu(self) -> bool:
        """A GPU is there and the engine can hand it to containers."""
        has_gpu = self.driver is not None and (bool(self.driver.gpus) or bool(self.driver.driver_version))
        runtime = self.cdi_gpu or (self.engine is not None and self.engine.nvidia_runtime)
        return has_gpu and runtime

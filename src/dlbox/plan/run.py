"""How the container runs: GPUs, shared memory and ulimits, ports, mounts, environment, secrets,
the user and the hardening flags (`RunPlan`), each with its reason or warning. Decided once, from
the spec and the observed host; `engine.run` only turns it into argv."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from dlbox.errors import PlanError
from dlbox.host import Host
from dlbox.plan.gpu import ImageChoice
from dlbox.plan.layout import LABEL_DIR, LABEL_PROJECT, STAGE, WORKSPACE
from dlbox.plan.model import (
    CAP_DROP,
    SECURITY_OPT,
    STACK_BYTES,
    Mount,
    Port,
    Proxy,
    RunPlan,
    is_loopback,
    looks_secret,
)
from dlbox.redact import mask_url
from dlbox.spec import Spec, split_mount


def _gpu_args(spec: Spec, host: Host, want: bool, warnings: list[str], reasons: list[str]) -> tuple[str, ...]:
    g = str(spec.run.gpus)
    if not want:
        return ()
    explicit = g != "auto"
    if not host.can_give_gpu and not explicit:
        if host.driver is None or (host.driver.driver_version is None and not host.driver.gpus):
            # also a failed or foreign output (rocm-smi, NVML errors): no GPU this engine could be given
            warnings.append("no NVIDIA GPU found on this host (no working nvidia-smi): containers run on the CPU")
        else:
            warnings.append("this host has an NVIDIA GPU but Docker has no NVIDIA runtime or CDI spec: containers run "
                            "on the CPU until you run `dlbox setup nvidia`")
        return ()
    value = "all" if g in ("auto", "all") else (g if g.isdigit() else f'"device={g}"')
    if host.cdi_gpu and not (host.engine and host.engine.nvidia_runtime):
        devices = ["nvidia.com/gpu=all"] if value == "all" else [f"nvidia.com/gpu={i}" for i in g.split(",")]
        reasons.append("GPUs are requested through CDI (a CDI spec for nvidia.com/gpu exists and no nvidia runtime)")
        return tuple(a for d in devices for a in ("--device", d))
    reasons.append(f"--gpus {value}: " + ("the host has an NVIDIA GPU and the engine's NVIDIA runtime"
                                           if host.can_give_gpu else "asked for in [run] gpus"))
    return ("--gpus", value)


def run_plan(spec: Spec, host: Host, choice: ImageChoice, proxy: Proxy, want_gpu: bool,
              reasons: list[str], warnings: list[str]) -> RunPlan:
    gpu_args = _gpu_args(spec, host, want_gpu, warnings, reasons)
    if proxy and host.net.proxy_loopback_only and (is_loopback(proxy.http) or is_loopback(proxy.https)):
        warnings.append(f"the proxy {mask_url(proxy.https or proxy.http)} listens on 127.0.0.1 only: containers reach "
                        "it as host.docker.internal, so let it accept LAN connections (\"allow LAN\" in desktop "
                        "proxy clients); builds are not affected (they use the host network)")
    ulimits = []
    if host.limits.memlock_hard is None:
        ulimits.append("memlock=-1")
    else:
        mib = host.limits.memlock_hard / 2**20
        warnings.append(f"the memlock hard limit here is {mib:g} MiB and cannot be raised for containers, so "
                        "--ulimit memlock=-1 is left out (pinned-memory transfers may be limited)")
    if host.limits.stack_hard is None or host.limits.stack_hard >= STACK_BYTES:
        ulimits.append(f"stack={STACK_BYTES}")
    else:
        warnings.append(f"the stack hard limit here is {host.limits.stack_hard} bytes: --ulimit stack=67108864 left out")
    ports = []
    for p in spec.run.ports:
        m = re.match(r"^(?:(\d+):)?(\d+)(?:/(tcp|udp))?$", str(p))
        hp, cp, proto = m.group(1) or m.group(2), m.group(2), m.group(3) or "tcp"
        ports.append(Port(int(hp), int(cp), proto))
    # On a server the code is baked into the image (dlbox deploy); locally it is bind-mounted.
    mounts = [] if host.server else [Mount(str(spec.project_dir), WORKSPACE)]
    for m in spec.run.mounts:
        src, dst, mode = split_mount(m)
        if host.server and not (src.startswith(("/", "~"))):
            warnings.append(f"mount {m!r} is relative to the project, which is not on {host.server}: left out there")
            continue
        mounts.append(Mount(_host_path(src, spec.project_dir, host.wsl, host.home), dst, mode == "ro"))
    env = dict(spec.run.env)
    for name in env:
        if looks_secret(name):
            warnings.append(f"[run] env {name} looks like a secret: its value is visible in `docker inspect`; "
                            f"use [run] secrets = [\"{name}\"] to take it from your environment as a file instead")
    reasons.append("containers run with --security-opt no-new-privileges --cap-drop ALL: nothing in them can "
                   "become root (the images have no setuid programs either)")
    raw = spec.run.secrets
    secrets = tuple(sorted(raw.items())) if isinstance(raw, dict) else tuple((n, "env") for n in raw)
    return RunPlan(
        gpu_args=gpu_args,
        ipc_host=spec.run.shm == "host",
        shm_size=None if spec.run.shm == "host" else spec.run.shm,
        ulimits=tuple(ulimits),
        ports=tuple(ports),
        mounts=tuple(mounts),
        env=tuple(sorted(env.items())),
        user=f"{host.uid}:{host.gid}",
        proxy=proxy,
        command=split_command(spec.run.command),
        labels=((LABEL_PROJECT, spec.name), (LABEL_DIR, str(spec.project_dir))),
        secrets=secrets,
        security_opt=SECURITY_OPT,
        cap_drop=CAP_DROP,
        masked=() if host.server else (f"{WORKSPACE}/{STAGE}",),
    )


def split_command(cmd: str | list[str] | None) -> tuple[str, ...] | None:
    """`[run] command` as argv: a string is split the way a shell would (quotes kept together)."""
    if not cmd:
        return None
    if isinstance(cmd, str):
        try:
            return tuple(shlex.split(cmd))
        except ValueError as exc:
            raise PlanError(f"[run] command {cmd!r} cannot be split into words: {exc}",
                            fix="close the quote, or write the command as a list of strings") from None
    return tuple(cmd)


def _host_path(src: str, project_dir: Path, wsl: bool, home: str | None = None) -> str:
    """Expand ~ and relative paths; translate a Windows path under WSL2 (C:\\data → /mnt/c/data)."""
    m = re.match(r"^([A-Za-z]):[\\/](.*)$", src)
    if m:
        if not wsl:
            raise PlanError(f"mount source {src!r} is a Windows path, and this host is not WSL2",
                            fix="use a Linux path in [run] mounts")
        return f"/mnt/{m.group(1).lower()}/" + m.group(2).replace("\\", "/")
    if home and (src == "~" or src.startswith("~/")):
        return home.rstrip("/") + src[1:]
    p = Path(src).expanduser()
    return str(p if p.is_absolute() else (project_dir / p).resolve())

"""What a server says about itself over SSH, and its engine as a `Docker`.

The lead wires these into `dlbox up/run/plan --host user@host`: planning uses the server's
driver (`remote_driver_facts`) and limits (`remote_limits`), running uses `remote_docker`.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass, field

from dlbox.engine.docker import Docker
from dlbox.gpu.nvidia_smi import DriverFacts, parse_nvidia_smi
from dlbox.ship import ssh


@dataclass(frozen=True)
class RemoteDocker(Docker):
    """A docker CLI whose engine is reached with `ssh://…`.

    The docker CLI runs plain `ssh` from PATH; to give it dlbox's options (BatchMode,
    ConnectTimeout, and `-F $DLBOX_SSH_CONFIG`) a one-line `ssh` wrapper is put first on PATH.
    """

    wrapper_dir: str = field(default="")

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = super().env(extra)
        if self.wrapper_dir:
            env["PATH"] = self.wrapper_dir + os.pathsep + env.get("PATH", "")
        return env


def _ssh_wrapper_dir() -> str:
    opts = " ".join(f"'{o}'" for o in ssh.base_options())
    d = os.path.join(tempfile.gettempdir(), f"dlbox-ssh-wrapper-{os.getuid()}")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "ssh")
    text = f'#!/bin/sh\nexec {ssh.ssh_binary()} {opts} "$@"\n'
    if not os.path.exists(path) or open(path).read() != text:
        tmp = path + f".{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, stat.S_IRWXU)
        os.replace(tmp, path)
    return d


def remote_docker(target: str) -> Docker:
    """The server's engine, driven by this machine's docker CLI over ssh (`docker -H ssh://…`)."""
    t = ssh.Target.parse(target)
    return RemoteDocker(host=t.docker_host, wrapper_dir=_ssh_wrapper_dir())


def remote_driver_facts(target: str) -> DriverFacts | None:
    """`nvidia-smi` on the server, parsed; None when the server has no NVIDIA driver."""
    t = ssh.Target.parse(target)
    proc = ssh.run(t, "command -v nvidia-smi >/dev/null 2>&1 || exit 127; nvidia-smi", timeout=60,
                   what="nvidia-smi")
    if proc.returncode != 0:
        return None
    facts = parse_nvidia_smi(proc.stdout.decode(errors="replace"))
    return DriverFacts(facts.driver_version, facts.cuda_max, facts.gpus, facts.wsl, source=f"nvidia-smi on {t}")


@dataclass(frozen=True)
class Limits:
    memlock_hard: int | None  # bytes; None = unlimited
    stack_hard: int | None


def parse_limits(text: str) -> Limits:
    """Output of `ulimit -Hl; ulimit -Hs` (KiB or 'unlimited') → bytes."""
    vals = [ln.strip() for ln in text.splitlines() if ln.strip()]

    def one(v: str) -> int | None:
        return None if v == "unlimited" else int(v) * 1024

    if len(vals) < 2:
        raise ValueError(f"unexpected ulimit output: {text!r}")
    return Limits(one(vals[0]), one(vals[1]))


def remote_limits(target: str) -> Limits:
    """The server's hard memlock and stack limits (what `--ulimit` may ask for there)."""
    t = ssh.Target.parse(target)
    proc = ssh.run(t, "ulimit -Hl; ulimit -Hs", timeout=60, what="ulimit")
    return parse_limits(proc.stdout.decode(errors="replace"))

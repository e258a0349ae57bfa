"""What a server says about itself over SSH: its NVIDIA driver, its limits, its user."""

from __future__ import annotations

from dlbox import ssh
from dlbox.host import EngineFacts, Host, Limits
from dlbox.host.nvidia_smi import DriverFacts, parse_nvidia_smi


def remote_driver_facts(target: str) -> DriverFacts | None:
    """`nvidia-smi` on the server, parsed; None when the server has no NVIDIA driver."""
    t = ssh.Target.parse(target)
    proc = ssh.run(t, "command -v nvidia-smi >/dev/null 2>&1 || exit 127; nvidia-smi", timeout=60,
                   what="nvidia-smi")
    if proc.returncode != 0:
        return None
    facts = parse_nvidia_smi(proc.stdout.decode(errors="replace"))
    return DriverFacts(facts.driver_version, facts.cuda_max, facts.gpus, facts.wsl, source=f"nvidia-smi on {t}")


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


def observe_server(target: str, engine_info: dict) -> Host:
    """The server's facts over SSH: its driver, limits, user and HOME; `engine_info` is its
    `docker info`, fetched by the caller through the engine room."""
    t = ssh.Target.parse(target)
    ids = ssh.run(t, 'id -u; id -g; echo "$HOME"', timeout=60, what="id").stdout.decode().split()
    return Host(
        driver=remote_driver_facts(target),
        engine=EngineFacts.from_info(engine_info),
        limits=remote_limits(target),
        uid=int(ids[0]), gid=int(ids[1]), home=ids[2] if len(ids) > 2 else None, server=target,
    )

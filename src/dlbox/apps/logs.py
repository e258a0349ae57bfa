"""A container's state and last log lines, for readiness waits and their error messages."""

from __future__ import annotations

from dlbox.engine.docker import Docker


def is_running(docker: Docker, name: str) -> bool:
    info = docker.inspect("container", name)
    return bool(info and info.get("State", {}).get("Running"))


def last_lines(docker: Docker, name: str, n: int = 30) -> str:
    """The last N lines the container wrote (stdout and stderr), indented for an error message."""
    proc = docker.run(["logs", "--tail", str(n), name], check=False, timeout=30)
    text = (proc.stdout + proc.stderr).decode(errors="replace").rstrip()
    return "\n".join("    " + line for line in text.splitlines())

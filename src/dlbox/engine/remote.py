"""A server's Docker engine, driven by this machine's docker CLI over SSH (`docker -H ssh://…`)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from dlbox import ssh
from dlbox.engine.docker import Docker
from dlbox.engine.paths import private_dir


@dataclass(frozen=True)
class RemoteDocker(Docker):
    """A docker CLI whose engine is reached with `ssh://…`.

    The docker CLI runs plain `ssh` from PATH; to give it dlbox's options (BatchMode,
    ConnectTimeout, and `-F $DLBOX_SSH_CONFIG`) a one-line `ssh` wrapper is put first on PATH.
    The wrapper lives in a private 0700 directory owned by this user: a shared, predictable
    path (/tmp/…) would let another local user plant a program that runs as us.
    """

    wrapper_dir: str = field(default="")

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = super().env(extra)
        if self.wrapper_dir:
            env["PATH"] = self.wrapper_dir + os.pathsep + env.get("PATH", "")
        return env


def _ssh_wrapper_dir() -> str:
    opts = " ".join(f"'{o}'" for o in ssh.base_options())
    d = str(private_dir("ssh-wrapper"))
    path = os.path.join(d, "ssh")
    text = f'#!/bin/sh\nexec {ssh.ssh_binary()} {opts} "$@"\n'
    try:
        current = open(path).read()
    except OSError:
        current = None
    if current != text:
        tmp = path + f".{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, stat.S_IRWXU)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return d


def remote_docker(target: str) -> Docker:
    """The server's engine, driven by this machine's docker CLI over ssh (`docker -H ssh://…`)."""
    t = ssh.Target.parse(target)
    return RemoteDocker(host=t.docker_host, wrapper_dir=_ssh_wrapper_dir())

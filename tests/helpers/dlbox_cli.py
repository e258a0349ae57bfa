"""Drive the `dlbox` command like a user does, optionally as another (non-root) user."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

DLBOX = str(Path(sys.executable).with_name("dlbox"))
KEEP_ENV = ("PATH", "PIP_CERT", "PIP_FIND_LINKS", "DOCKER_BUILDKIT", "LANG", "DLBOX_CACHE")


def dlbox_argv(*args: str, user: str | None = None, env: dict | None = None) -> list[str]:
    argv = [DLBOX, *args]
    if user:
        full = dict(os.environ, **(env or {}))
        home = pwd.getpwnam(user).pw_dir
        keep = {k: full[k] for k in KEEP_ENV if k in full}
        argv = ["runuser", "-u", user, "--", "env", "-i", f"HOME={home}", f"USER={user}"] + \
            [f"{k}={v}" for k, v in keep.items()] + argv
    return argv


def dlbox(*args: str, cwd: Path | None = None, env: dict | None = None, user: str | None = None,
          timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(dlbox_argv(*args, user=user, env=env), cwd=cwd, env=dict(os.environ, **(env or {})),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"dlbox {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def tiny_project(path: Path, name: str, extra: str = "") -> Path:
    """A project without torch: builds in seconds on the bootstrapped Debian base."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dlbox.toml").write_text(f'name = "{name}"\n[env]\ntorch = "none"\n{extra}')
    return path


def docker(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout

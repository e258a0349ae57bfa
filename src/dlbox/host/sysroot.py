"""The one place every host probe reads through, pointable at another root.

`SysRoot("/")` observes this machine. `SysRoot(DIR)` observes a saved or mounted one:
files are read under DIR (`DIR/etc/docker/daemon.json`, `DIR/proc/version`, …) and
command outputs come from files instead of processes, so no live command ever runs:

    DIR/.dlbox/env.json                 environment variables (HOME, PWD, http_proxy, …)
    DIR/.dlbox/commands/NAME.txt        stdout of the command NAME (see COMMANDS)
    DIR/.dlbox/commands/NAME.rc         its exit status (default 0)
    DIR/.dlbox/commands/NAME.err        its stderr
    DIR/.dlbox/commands/ulimit-l.txt    the memlock hard limit in KiB, or "unlimited"
    DIR/.dlbox/commands/ulimit-s.txt    the stack hard limit in KiB, or "unlimited"
    DIR/.dlbox/commands/id.txt          "UID GID" of the user dlbox runs as (default 1000 1000)
    DIR/.dlbox/commands/free-bytes.json {"/var/lib/docker": 123456789}

A command with none of these files is "not installed". Executables are looked up in
DIR/usr/local/bin, DIR/usr/bin, DIR/bin, DIR/usr/sbin, DIR/snap/bin.
"""

from __future__ import annotations

import json
import os
import pwd
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

# Saved-output names → the live argv that produces them. docker itself is run through
# dlbox.engine.docker (the one docker choke point), never from here: a live SysRoot is handed
# `engine_info` (dlbox.engine.docker.info_probe) by the room that may run docker.
COMMANDS: dict[str, list[str]] = {
    "nvidia-smi": ["nvidia-smi"],
    # with its header, so the columns are read by name (old drivers lack compute_cap: exit != 0)
    "nvidia-smi-query": ["nvidia-smi", "--query-gpu=index,name,compute_cap,memory.total", "--format=csv,nounits"],
    # drivers before R510 do not know compute_cap: the same query without it
    "nvidia-smi-query-old": ["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,nounits"],
    # WSL2 ships nvidia-smi with the Windows driver, not always on PATH
    "nvidia-smi-wsl": ["/usr/lib/wsl/lib/nvidia-smi"],
    "nvidia-ctk-version": ["nvidia-ctk", "--version"],
    "uname-m": ["uname", "-m"],
}
FAKE_PATH = ("usr/local/bin", "usr/bin", "bin", "usr/sbin", "sbin", "snap/bin")


@dataclass(frozen=True)
class Output:
    """What a command printed. `returncode` 127 means it is not installed."""

    returncode: int
    stdout: str
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


NOT_INSTALLED = Output(127, "", "not installed")


NOT_ASKED = Output(127, "", "docker was not asked (no engine given)")


@dataclass(frozen=True)
class SysRoot:
    root: Path = Path("/")
    # `docker info --format '{{json .}}'` on the live root; None: the engine is not asked.
    engine_info: Callable[[], Output] | None = field(default=None, compare=False, repr=False)

    @property
    def live(self) -> bool:
        return self.root.resolve() == Path("/")

    # -- files ---------------------------------------------------------------------------

    def path(self, p: str | os.PathLike) -> Path:
        """The real location of the absolute host path `p` under this root."""
        return self.root / str(p).lstrip("/")

    def read_text(self, p: str | os.PathLike) -> str | None:
        """File contents, or None when missing or unreadable. A fake root's link is read inside it."""
        try:
            return self.path(p if self.live else self.realpath(str(p))).read_text(errors="replace")
        except (OSError, UnicodeError):
            return None

    def exists(self, p: str | os.PathLike) -> bool:
        return self.path(p).exists()

    def glob(self, directory: str, pattern: str) -> list[str]:
        """Host paths (not real paths) of files in `directory` matching `pattern`, sorted."""
        d = self.path(directory)
        try:
            return sorted(str(Path(directory) / q.name) for q in d.glob(pattern) if q.is_file())
        except OSError:
            return []

    def mtime(self, p: str) -> float | None:
        try:
            return self.path(p).stat().st_mtime
        except OSError:
            return None

    # -- process state -------------------------------------------------------------------

    def env(self) -> Mapping[str, str]:
        if self.live:
            return os.environ
        text = self.read_text("/.dlbox/env.json")
        return json.loads(text) if text else {}

    def home(self) -> str:
        """Home of the invoking user (SUDO_USER's when run through sudo), as a host path."""
        env = self.env()
        if self.live:
            sudo_user = env.get("SUDO_USER")
            if sudo_user:
                try:
                    return pwd.getpwnam(sudo_user).pw_dir
                except KeyError:
                    pass
            return str(Path.home())
        return env.get("HOME", "/root")

    def cwd(self) -> str:
        return os.getcwd() if self.live else self.env().get("PWD", "/")

    def which(self, name: str) -> str | None:
        """Host path of the executable `name`, or None."""
        if self.live:
            return shutil.which(name)
        for d in FAKE_PATH:
            if self.path(f"/{d}/{name}").exists():
                return f"/{d}/{name}"
        return None

    def realpath(self, p: str) -> str:
        """Symlinks resolved, as a host path (a fake root's links are read as stored)."""
        if self.live:
            return os.path.realpath(p)
        try:
            target = os.readlink(self.path(p))
        except OSError:
            return p
        return target if target.startswith("/") else str(Path(p).parent / target)

    def command(self, name: str, *, timeout: float = 5.0) -> Output:
        """Run the command `name` from COMMANDS live, or read its saved output."""
        if not self.live:
            return self.saved(name)
        argv = COMMANDS[name]
        if not shutil.which(argv[0]):
            return NOT_INSTALLED
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Output(124, "", f"{argv[0]} did not answer within {timeout:.0f} s")
        except OSError as exc:
            return Output(126, "", str(exc))
        return Output(p.returncode, p.stdout, p.stderr)

    def saved(self, name: str) -> Output:
        """A saved command output under DIR/.dlbox/commands/, or NOT_INSTALLED."""
        base = self.path(f"/.dlbox/commands/{name}")
        parts = {ext: base.with_name(base.name + ext) for ext in (".txt", ".json", ".rc", ".err")}
        if not any(p.exists() for p in parts.values()):
            return NOT_INSTALLED
        out = next((p.read_text() for k, p in parts.items() if k in (".txt", ".json") and p.exists()), "")
        rc = int(parts[".rc"].read_text().strip()) if parts[".rc"].exists() else 0
        err = parts[".err"].read_text() if parts[".err"].exists() else ""
        return Output(rc, out, err)

    def docker_info(self) -> Output:
        """`docker info --format '{{json .}}'`: saved under a root, else through `engine_info`."""
        if not self.live:
            return self.saved("docker-info")
        return self.engine_info() if self.engine_info is not None else NOT_ASKED

    def memlock_hard_kib(self) -> int | None:
        """The memlock hard limit in KiB; None means unlimited."""
        return self._hard_kib(resource.RLIMIT_MEMLOCK, "ulimit-l")

    def stack_hard_kib(self) -> int | None:
        """The stack hard limit in KiB; None means unlimited."""
        return self._hard_kib(resource.RLIMIT_STACK, "ulimit-s")

    def _hard_kib(self, which: int, saved: str) -> int | None:
        if self.live:
            hard = resource.getrlimit(which)[1]
            return None if hard == resource.RLIM_INFINITY else hard // 1024
        text = (self.saved(saved).stdout or "unlimited").strip()
        return None if text == "unlimited" else int(text)

    def ids(self) -> tuple[int, int]:
        """(uid, gid) of the user dlbox runs as."""
        if self.live:
            return os.getuid(), os.getgid()
        words = self.saved("id").stdout.split()
        return (int(words[0]), int(words[1])) if len(words) >= 2 else (1000, 1000)

    def free_bytes(self, p: str) -> int | None:
        """Free bytes on the filesystem holding host path `p`; None when unknown."""
        if not self.live:
            text = self.saved("free-bytes").stdout
            return json.loads(text).get(p) if text else None
        probe = Path(p)
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent  # the data root may not exist yet on a fresh engine
        try:
            st = os.statvfs(probe)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def clock_ticks(self) -> int:
        return os.sysconf("SC_CLK_TCK") if self.live else 100

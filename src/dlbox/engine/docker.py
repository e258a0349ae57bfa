"""The one subprocess choke point for the docker CLI.

Every docker command of dlbox is built as an argv list here and run through `Docker.run`
(or `Docker.popen` for streams). Unit tests check argv; integration tests run it for real.
Engine failures that users meet every day (daemon down, socket permission) become
`HostError`s with the fix; anything else is an `EngineError` carrying docker's own words.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Sequence

from dlbox.errors import DlboxError, EngineError, HostError
from dlbox.host.sysroot import NOT_INSTALLED, Output

# The Debian docker.io client (20.10) has BuildKit built in; docker >= 23 needs the buildx plugin.
LEGACY_BUILDKIT_CLIENT = "/usr/bin/docker"


def _daemon_start_hint() -> str:
    if shutil.which("systemctl") and os.path.isdir("/run/systemd/system"):
        return "sudo systemctl start docker   (and `sudo systemctl enable docker` to keep it)"
    return "sudo dockerd >/var/log/dockerd.log 2>&1 &   (no systemd here), or `dlbox setup docker`"


def translate_engine_error(stderr: str) -> HostError | None:
    """Known 'the engine cannot be reached' texts → a HostError with the fix, else None."""
    text = stderr.strip()
    if "permission denied while trying to connect to the Docker daemon" in text:
        user = os.environ.get("USER") or os.environ.get("LOGNAME") or "$USER"
        return HostError(
            "Permission denied on the Docker socket: this user is not in the 'docker' group.",
            fix=f"sudo usermod -aG docker {user}   then log out and in again (or `newgrp docker`)",
        )
    if "Cannot connect to the Docker daemon" in text or "Is the docker daemon running" in text:
        return HostError(
            "The Docker engine is not running (or not reachable at DOCKER_HOST).",
            fix=_daemon_start_hint(),
        )
    if "error during connect" in text and ("ssh" in text.lower()):
        return HostError(f"Cannot reach the remote Docker engine over SSH: {text.splitlines()[-1]}",
                         fix="check `ssh HOST docker version` works; install Docker there with `dlbox setup docker`")
    return None


@dataclass(frozen=True)
class Docker:
    """A docker CLI bound to one engine.

    `host` is a DOCKER_HOST value (`unix:///…`, `ssh://user@host`); None means the default.
    `binary` is the client; `buildkit_binary` the client to use for BuildKit builds.
    """

    host: str | None = None
    binary: str = field(default_factory=lambda: shutil.which("docker") or LEGACY_BUILDKIT_CLIENT)

    def argv(self, *args: str) -> list[str]:
        base = [self.binary]
        if self.host:
            base += ["--host", self.host]
        return base + list(args)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DOCKER_HOST", None) if self.host else None
        env.update(extra or {})
        return env

    def run(
        self,
        args: Sequence[str],
        *,
        check: bool = True,
        capture: bool = True,
        input: bytes | str | None = None,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        what: str = "",
    ) -> subprocess.CompletedProcess:
        """Run `docker ARGS`; raise on failure unless check=False."""
        argv = self.argv(*args)
        try:
            proc = subprocess.run(
                argv,
                input=input.encode() if isinstance(input, str) else input,
                capture_output=capture,
                timeout=timeout,
                env=self.env(env),
            )
        except FileNotFoundError:
            raise HostError(
                f"The docker client '{self.binary}' is not installed.",
                fix="dlbox setup docker   (or: sudo apt-get install docker.io)",
            ) from None
        except subprocess.TimeoutExpired:
            raise EngineError(f"docker {' '.join(args[:2])} did not answer within {timeout:.0f} s") from None
        if check and proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace") if capture and proc.stderr else ""
            raise self.error(stderr, what or f"docker {args[0]}")
        return proc

    def popen(self, args: Sequence[str], *, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
        try:
            return subprocess.Popen(self.argv(*args), env=self.env(env), **kw)
        except FileNotFoundError:
            raise HostError(f"The docker client '{self.binary}' is not installed.",
                            fix="dlbox setup docker   (or: sudo apt-get install docker.io)") from None

    def error(self, stderr: str, what: str) -> Exception:
        known = translate_engine_error(stderr)
        if known:
            return known
        # the newer CLI ends every error with "Run 'docker run --help' for more information"
        last = [ln for ln in stderr.strip().splitlines()
                if ln.strip() and not re.match(r"^(Run|See) 'docker .*--help'", ln.strip())]
        summary = last[-1] if last else "no error text"
        return EngineError(f"{what} failed: {summary}", detail=stderr)

    # -- small queries used everywhere --------------------------------------------------------

    def ping(self) -> None:
        """Raise HostError when the engine cannot be reached."""
        self.run(["version", "--format", "{{.Server.Version}}"], timeout=20, what="docker version")

    def inspect(self, kind: str, ref: str) -> dict | None:
        """`docker KIND inspect REF` as a dict, or None when it does not exist."""
        proc = self.run([kind, "inspect", ref], check=False, timeout=30)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace")
            if translate_engine_error(err):
                raise translate_engine_error(err)
            return None
        data = json.loads(proc.stdout or b"[]")
        return data[0] if data else None

    def image_exists(self, ref: str) -> bool:
        return self.inspect("image", ref) is not None

    def info(self) -> dict:
        proc = self.run(["info", "--format", "{{json .}}"], timeout=30, what="docker info")
        return json.loads(proc.stdout)


@functools.lru_cache(maxsize=None)
def client_version(binary: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([binary, "version", "--format", "{{.Client.Version}}"],
                             capture_output=True, timeout=20).stdout.decode().strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = []
    for p in out.split("-")[0].split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts) or None


@functools.lru_cache(maxsize=None)
def has_buildx(binary: str) -> bool:
    try:
        return subprocess.run([binary, "buildx", "version"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def buildkit_client(default: str | None = None) -> str | None:
    """A docker client that can run a BuildKit build with secrets and cache mounts.

    Docker >= 23 clients build with BuildKit only through the buildx plugin; older clients
    (Debian's docker.io 20.10) have it built in behind DOCKER_BUILDKIT=1. Returns None when
    no such client exists (then only the legacy builder is left).
    """
    candidates = [c for c in (default or shutil.which("docker"), LEGACY_BUILDKIT_CLIENT) if c]
    for c in dict.fromkeys(candidates):
        if not os.path.exists(c):
            continue
        if has_buildx(c):
            return c
        v = client_version(c)
        if v and v < (23,):
            return c
    return None


def info_probe(docker: Docker | None = None) -> Output:
    """`docker info --format '{{json .}}'` as a command output, for a live `SysRoot(engine_info=…)`:
    a missing client is "not installed", a daemon that does not answer in 5 s is exit 124."""
    if docker is None:
        if not shutil.which("docker"):
            return NOT_INSTALLED
        docker = Docker()
    try:
        p = docker.run(["info", "--format", "{{json .}}"], check=False, timeout=5)
    except DlboxError as exc:
        return Output(124, "", exc.message)
    return Output(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))

"""`dlbox push`: tag the image for a registry and `docker push` it.

Plain-HTTP registries on 127.0.0.0/8 work without configuration: the engine treats that
range as insecure by default. Registry mirrors (daemon.json `registry-mirrors`) only serve
pulls from Docker Hub; they are reported so a user is not surprised pushes bypass them.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Iterator

from dlbox.engine.docker import Docker
from dlbox.engine.paths import private_dir
from dlbox.errors import DlboxError, EngineError
from dlbox.redact import mask_secrets


@dataclass(frozen=True)
class PushResult:
    image: str
    remote_ref: str
    digest: str | None
    seconds: float
    notes: tuple[str, ...] = field(default=())


def split_credentials(registry: str) -> tuple[str, str | None, str | None]:
    """`user:pw@host:5000/team` → (`host:5000/team`, user, pw). The password is only ever given
    to `docker login --password-stdin`, in a throw-away config dir: never printed, never kept."""
    registry = registry.strip()
    host, slash, path = registry.partition("/")
    if "@" not in host:
        return registry, None, None
    creds, _, host = host.rpartition("@")
    user, _, password = creds.partition(":")
    return host + slash + path, user or None, password or None


def shown(registry: str) -> str:
    """REGISTRY as it may be printed: `user:***@host/…`."""
    bare, user, password = split_credentials(registry)
    return f"{user}:***@{bare}" if password else (f"{user}@{bare}" if user else bare)


@contextlib.contextmanager
def login_env(docker: Docker, registry: str) -> Iterator[dict[str, str]]:
    """Environment for docker commands that push to REGISTRY: with credentials, a private
    DOCKER_CONFIG holding them for this push only, removed afterwards."""
    bare, user, password = split_credentials(registry)
    if not user:
        yield {}
        return
    d = private_dir("login") / secrets.token_hex(8)
    d.mkdir(mode=0o700)
    env = {"DOCKER_CONFIG": str(d)}
    try:
        proc = docker.run(["login", "--username", user, "--password-stdin", bare.split("/")[0]],
                          input=(password or "") + "\n", check=False, timeout=60, env=env)
        if proc.returncode != 0:
            text = mask_secrets(proc.stderr.decode(errors="replace")).replace(password or "\0", "***")
            last = [ln for ln in text.strip().splitlines() if ln.strip()]
            raise EngineError(f"docker login to {bare.split('/')[0]} as {user} failed: "
                              f"{last[-1] if last else 'no error text'}",
                              fix="check the user name and password (or token) for that registry")
        yield env
    finally:
        shutil.rmtree(d, ignore_errors=True)


def remote_ref(image_ref: str, registry: str) -> str:
    """`dlbox/digits:baked` + `reg:5000/team` → `reg:5000/team/dlbox/digits:baked`.

    The image's own registry host (if any) is replaced: the path and tag stay.
    """
    registry = split_credentials(registry)[0].rstrip("/")
    if not registry or " " in registry:
        raise DlboxError(f"'{registry}' is not a registry", fix="write it as [USER:PASSWORD@]HOST[:PORT][/NAMESPACE]")
    first, _, rest = image_ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        image_ref = rest  # drop the old registry host
    return f"{registry}/{image_ref}"


def registry_notes(info: dict, registry: str) -> list[str]:
    notes = []
    reg = info.get("RegistryConfig") or {}
    mirrors = reg.get("Mirrors") or []
    if mirrors:
        notes.append(f"registry mirrors in the daemon's configuration: {', '.join(mirrors)} "
                     "(they serve pulls from Docker Hub; this push goes to the registry named)")
    host = registry.split("/")[0]
    if re.match(r"^(127\.|localhost(:|$))", host):
        notes.append(f"{host} is on loopback: the engine allows plain HTTP there by default")
    elif any(k == host and not v.get("Secure", True) for k, v in (reg.get("IndexConfigs") or {}).items()):
        notes.append(f"{host} is configured as an insecure (plain HTTP) registry")
    return notes


def push_argv(ref: str) -> list[str]:
    return ["push", ref]


def push(docker: Docker, ref: str, registry: str, *, on_line=lambda _l: None) -> PushResult:
    """Tag REF as REGISTRY/REF and push it; `on_line` gets docker's progress lines."""
    t0 = time.monotonic()
    if docker.inspect("image", ref) is None:
        raise EngineError(f"There is no image '{ref}' on this machine's engine.",
                          fix="dlbox build --bake   (or docker images to find the name)")
    target = remote_ref(ref, registry)
    bare = split_credentials(registry)[0]
    try:
        notes = registry_notes(docker.info(), bare)
    except DlboxError:
        notes = []
    docker.run(["tag", ref, target], timeout=60, what="docker tag")
    lines = []
    with login_env(docker, registry) as env:
        proc = docker.popen(push_argv(target), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            on_line(line)
        status = proc.wait()
    if status != 0:
        text = "\n".join(lines)
        err = docker.error(text, f"docker push {target}")
        if "http: server gave HTTP response to HTTPS client" in text:
            err.fix = (f"add \"insecure-registries\": [\"{target.split('/')[0]}\"] to /etc/docker/daemon.json "
                       "and restart docker, or serve the registry over HTTPS")
        elif "connection refused" in text or "no such host" in text:
            err.fix = f"check the registry answers: curl http://{target.split('/')[0]}/v2/"
        raise err
    digest = next((m.group(1) for ln in lines if (m := re.search(r"digest: (sha256:[0-9a-f]{64})", ln))), None)
    return PushResult(ref, target, digest, time.monotonic() - t0, tuple(notes))

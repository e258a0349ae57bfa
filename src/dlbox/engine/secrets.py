"""Secrets on their way into builds and containers, as files only.

- Builds: an index URL with credentials, and a uv-managed CPython's mirror, is a BuildKit secret (`--secret id=…,src=FILE`); the
  file is 0600 in a private directory and removed when the build ends.
- Containers: `[run] secrets` and the proxy are 0600 files in a private directory per
  container, bind-mounted read-only at /run/secrets and exported by the image's entrypoint;
  `[run] env` reaches docker through a 0600 `--env-file`. So no value is on an argv (`ps`),
  and no secret is in `docker inspect`, in an image (`docker commit` of the container) or in a
  label. The directory of a detached container lives until `dlbox down`.
"""

from __future__ import annotations

import contextlib
import os
import secrets as _random
import shutil
from pathlib import Path
from typing import Iterator

from dlbox.engine.paths import private_dir
from dlbox.errors import HostError
from dlbox.plan.model import Plan
from dlbox.render.dockerfile import index_secrets
from dlbox.render.python_install import MIRROR_SECRET

SECRETS_TARGET = "/run/secrets"


def write_private(path: Path, text: str) -> Path:
    """Write TEXT to PATH readable by this user only (never following a planted link)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


@contextlib.contextmanager
def build_secret_args(plan: Plan) -> Iterator[list[str]]:
    """`--secret id=dlbox_index_N,src=FILE` for each index URL with credentials, and the uv-managed
    CPython's mirror as `dlbox_python_mirror` (any mirror: it stays out of the RUN text, so the
    Python layer is the same whichever mirror served it); files removed after."""
    pairs = index_secrets(plan)
    if plan.build.python_mirror and plan.build.python_install.startswith("uv:"):
        pairs = [*pairs, (MIRROR_SECRET, plan.build.python_mirror)]
    if not pairs:
        yield []
        return
    d = private_dir("build") / _random.token_hex(8)
    d.mkdir(mode=0o700)
    try:
        args: list[str] = []
        for sid, url in pairs:
            args += ["--secret", f"id={sid},src={write_private(d / sid, url)}"]
        yield args
    finally:
        shutil.rmtree(d, ignore_errors=True)


def secret_values(plan: Plan, environ: dict[str, str] | None = None) -> dict[str, str]:
    """[run] secrets read now, from this environment or their files. A missing one is an error."""
    environ = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for name, source in plan.run.secrets:
        if source.startswith("file:"):
            path = Path(source[5:]).expanduser()
            if not path.is_absolute():
                path = Path(plan.project_dir) / path
            try:
                out[name] = path.read_text().strip("\r\n")
            except OSError as exc:
                raise HostError(f"secret {name}: cannot read {path}: {exc.strerror}",
                                fix=f"create it, or change [run] secrets for {name}") from None
            continue
        var = source[4:] if source.startswith("env:") else name
        if var not in environ:
            raise HostError(f"secret {name}: ${var} is not set in this environment",
                            fix=f"export {var}=…  (or take it from a file: [run.secrets] {name} = \"file:PATH\")")
        out[name] = environ[var]
    return out


def container_files(plan: Plan, key: str, *, proxy: dict[str, str],
                    environ: dict[str, str] | None = None) -> tuple[Path, Path]:
    """(secrets dir, env file) for the container KEY (its name, or a one-off id), written now.

    The secrets are the container user's: under `sudo dlbox` that is the project's owner, so
    the files are given to that UID (still 0600), which the container runs as."""
    root = private_dir("run")
    d = root / key
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(mode=0o700)
    files = d / "secrets"
    files.mkdir(mode=0o700)
    written = [files]
    for name, value in {**proxy, **secret_values(plan, environ)}.items():
        written.append(write_private(files / name, value))
    env_file = write_private(d / "env", "".join(f"{k}={v}\n" for k, v in plan.run.env))
    uid, _, gid = plan.run.user.partition(":")
    if os.geteuid() == 0 and int(uid) != 0:
        for p in written:
            os.chown(p, int(uid), int(gid or uid), follow_symlinks=False)
    return files, env_file


def remove_container_files(key: str) -> None:
    shutil.rmtree(private_dir("run") / key, ignore_errors=True)


def one_off_key(plan: Plan) -> str:
    return f"{plan.project}-{_random.token_hex(6)}"

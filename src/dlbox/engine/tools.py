"""The build tools image: uv and the local wheels, outside every project's build context.

Every pip step of a dlbox Dockerfile bind-mounts `dlbox/tools:<key>` at /mnt (plan.layout.TOOLS):
the uv binary, the wheels of each find_links directory, an empty mount point for the uv cache and
one for the CA secret. The image is built once per engine and per (uv, wheel set), from a private
staging directory under dlbox's cache (hard links to the wheels, never inside a project), so a
project's own build sends only the few small files it reads (its requirements, the entrypoint).

Why an image and not a named context: the Debian docker 20.10 client builds with BuildKit but has
no `--build-context`; `RUN --mount=type=bind,from=IMAGE` works on every BuildKit engine.
Why at /mnt with the mount points inside the image: BuildKit < 0.10 (docker 20.10) leaves the
mount-point stubs it creates in the layer, stamped with the build's clock, which would make the
shared layers differ between machines; /mnt exists in every Debian/Ubuntu base image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import uv

from dlbox.engine.docker import Docker, buildkit_client
from dlbox.engine.paths import cache_dir
from dlbox.errors import EngineError

TOOLS_REPO = "dlbox/tools"
WHEEL_SUFFIXES = (".whl", ".tar.gz", ".zip")
DOCKERFILE = """# dlbox's build tools: uv, the local wheels, mount points. Mounted at /mnt by every pip step.
FROM scratch
COPY . /
"""


def uv_binary() -> Path:
    return Path(uv.find_uv_bin())


def _wheels(d: str) -> list[Path]:
    src = Path(d)
    if not src.is_dir():
        return []
    return sorted((p for p in src.iterdir() if p.name.endswith(WHEEL_SUFFIXES) and p.is_file()), key=lambda p: p.name)


def tools_key(find_links: tuple[str, ...]) -> str:
    """Names the tools image: the uv binary and every wheel, by name, size and mtime (cheap to
    compute on each build; a replaced file changes its mtime)."""
    h = hashlib.sha256()
    b = uv_binary()
    st = b.stat()
    h.update(f"uv {st.st_size} {st.st_mtime_ns}\n".encode())
    for i, d in enumerate(find_links):
        for w in _wheels(d):
            s = w.stat()
            h.update(f"link {i} {w.name} {s.st_size} {s.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def tools_ref(find_links: tuple[str, ...]) -> str:
    return f"{TOOLS_REPO}:{tools_key(find_links)}"


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        s, d = src.stat(), dst.stat()
        if (s.st_ino, s.st_dev) == (d.st_ino, d.st_dev) or (s.st_size == d.st_size and s.st_mtime <= d.st_mtime):
            return
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)  # another filesystem: copied once, kept while unchanged


def stage_tools(find_links: tuple[str, ...]) -> Path:
    """The tools image's build context, in dlbox's cache (one fixed path, so BuildKit sends only
    what changed since the last tools build)."""
    ctx = cache_dir("tools-context")
    (ctx / "Dockerfile.tools").write_text(DOCKERFILE)
    (ctx / "Dockerfile.tools.dockerignore").write_text("Dockerfile.tools\nDockerfile.tools.dockerignore\n")
    (ctx / "cache").mkdir(exist_ok=True)
    (ctx / "ca.pem").write_bytes(b"")
    _link(uv_binary(), ctx / "uv")
    links = ctx / "links"
    links.mkdir(exist_ok=True)
    for old in links.iterdir():
        if not (old.name.isdigit() and int(old.name) < len(find_links)):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    for i, d in enumerate(find_links):
        dst = links / str(i)
        dst.mkdir(exist_ok=True)
        wheels = _wheels(d)
        for stale in {p.name for p in dst.iterdir()} - {w.name for w in wheels}:
            (dst / stale).unlink()
        for w in wheels:
            _link(w, dst / w.name)
    return ctx


def ensure_tools(docker: Docker, find_links: tuple[str, ...], *, quiet: bool = True) -> str:
    """The tools image for these find_links directories on DOCKER's engine (built when missing)."""
    ref = tools_ref(find_links)
    if docker.image_exists(ref):
        return ref
    ctx = stage_tools(find_links)
    client = Docker(host=docker.host, binary=buildkit_client(docker.binary) or docker.binary)
    argv = ["build", "-f", str(ctx / "Dockerfile.tools"), "-t", ref, "--progress", "plain",
            "--label", "org.dlbox.tools=1", str(ctx)]
    proc = client.run(argv, env={"DOCKER_BUILDKIT": "1"}, check=False, capture=quiet, timeout=3600)
    if proc.returncode != 0:
        text = (proc.stderr or b"").decode(errors="replace").strip()
        raise EngineError(f"building the tools image {ref} failed" + (f": {text.splitlines()[-1]}" if text else ""),
                          detail=text)
    return ref

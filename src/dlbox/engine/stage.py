"""Stage what a build reads into the project's `.dlbox/` directory.

The rendered Dockerfile refers only to paths inside the build context, so that plain
`docker build` works on it: `.dlbox/bin/uv` (the host's uv, bind-mounted into pip steps),
`.dlbox/links/N/` (hard links to the wheels of each find_links directory), and
`.dlbox/entrypoint.sh`. `.dlbox/.gitignore` keeps the bulky parts out of git.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import uv

from dlbox.errors import HostError
from dlbox.plan import Plan
from dlbox.plan.layout import STAGE
from dlbox.render.dockerfile import entrypoint_script, render_dockerfile, render_dockerignore

WHEEL_SUFFIXES = (".whl", ".tar.gz", ".zip")


@dataclass(frozen=True)
class Staged:
    dockerfile: Path
    fingerprint: str      # hash of every build input: the image tag is derived from it


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        s, d = src.stat(), dst.stat()
        if (s.st_ino == d.st_ino and s.st_dev == d.st_dev) or (s.st_size == d.st_size and s.st_mtime <= d.st_mtime):
            return
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)   # another filesystem: copy once, kept while unchanged


def stage_links(stage: Path, dirs: tuple[str, ...], h: "hashlib._Hash") -> None:
    root = stage / "links"
    if root.exists():
        for old in root.iterdir():
            if not (old.name.isdigit() and int(old.name) < len(dirs)):
                shutil.rmtree(old) if old.is_dir() else old.unlink()
    for i, d in enumerate(dirs):
        dst_dir = root / str(i)
        dst_dir.mkdir(parents=True, exist_ok=True)
        src_dir = Path(d)
        names = sorted(p.name for p in src_dir.iterdir() if p.name.endswith(WHEEL_SUFFIXES) and p.is_file())
        for stale in set(p.name for p in dst_dir.iterdir()) - set(names):
            (dst_dir / stale).unlink()
        for name in names:
            _link(src_dir / name, dst_dir / name)
            st = (src_dir / name).stat()
            h.update(f"link {i} {name} {st.st_size}\n".encode())


def _hash_package(project_dir: Path, pkg, h) -> None:
    """The package's metadata, and with extensions their sources: the image is rebuilt (and the
    extensions recompiled) when one of these changes; plain code edits need no rebuild."""
    from dlbox.plan.project_package import EXT_SOURCES, META_FILES

    root = project_dir / pkg.path
    for name in META_FILES:
        if (root / name).is_file():
            h.update(f"meta {name}\n".encode() + (root / name).read_bytes())
    if not pkg.extensions:
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", STAGE, ".venv", "venv", "build", "__pycache__"))
        for name in sorted(filenames):
            if name.endswith(EXT_SOURCES):
                p = Path(dirpath) / name
                h.update(f"ext {p.relative_to(root)}\n".encode() + p.read_bytes())


def stage_project(plan: Plan) -> Staged:
    """Write the project's .dlbox/ (Dockerfile, ignore file, entrypoint, uv, find_links) and
    fingerprint every build input."""
    project_dir = Path(plan.project_dir)
    stage = project_dir / STAGE
    try:
        stage.mkdir(exist_ok=True)
    except OSError as exc:
        raise HostError(f"cannot write {stage}: {exc.strerror}") from None
    dockerfile = render_dockerfile(plan)
    h = hashlib.sha256(dockerfile.encode())
    _write(stage / "Dockerfile", dockerfile)
    _write(stage / "Dockerfile.dockerignore", render_dockerignore(bake=False))
    _write(stage / "entrypoint.sh", entrypoint_script())
    _write(stage / ".gitignore", "# dlbox's staging area: the Dockerfile is worth keeping, the rest is rebuilt\nbin/\nlinks/\n*.tmp\nlock\n")
    h.update(entrypoint_script().encode())
    uv_bin = Path(uv.find_uv_bin())
    (stage / "bin").mkdir(exist_ok=True)
    _link(uv_bin, stage / "bin" / "uv")
    h.update(f"uv {uv_bin.stat().st_size}\n".encode())
    stage_links(stage, plan.build.find_links, h)
    _write(stage / "collect_ext.py", (Path(__file__).parent.parent / "templates" / "collect_ext.py").read_text())
    if plan.build.package is not None:
        _hash_package(project_dir, plan.build.package, h)
    if plan.build.locked is not None:
        h.update(f"lock {plan.build.locked.sha256}\n".encode())   # the image tag follows the lock
    elif plan.requirements_path:
        h.update(plan.requirements_path.read_bytes())
    return Staged(dockerfile=stage / "Dockerfile", fingerprint=h.hexdigest())

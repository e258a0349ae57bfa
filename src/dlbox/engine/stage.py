"""Stage what a build reads into the project's `.dlbox/` directory.

The rendered Dockerfile reads from the project only `.dlbox/entrypoint.sh` and the project's own
requirements file, so a build sends a few kilobytes of context. uv and the local wheels reach the
build through the tools image (engine.tools), never through the project: nothing is linked or
copied into it. `.dlbox/.gitignore` keeps the generated scratch files out of git.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from dlbox.engine.docker import Docker
from dlbox.engine.paths import give_to_owner
from dlbox.engine.tools import ensure_tools, tools_ref
from dlbox.errors import HostError
from dlbox.plan.layout import STAGE
from dlbox.plan.model import Plan
from dlbox.render.dockerfile import entrypoint_script, render_dockerfile, render_dockerignore


@dataclass(frozen=True)
class Staged:
    dockerfile: Path
    fingerprint: str      # hash of every build input: the image tag is derived from it
    tools: str            # the tools image the Dockerfile mounts


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _drop_old_links(stage: Path) -> None:
    """Earlier dlbox versions hard-linked uv and the wheels into .dlbox/bin and .dlbox/links."""
    for name in ("bin", "links"):
        old = stage / name
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)


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


def _requirement_files(plan: Plan) -> tuple[str, ...]:
    files = plan.build.requirement_files
    if plan.build.requirements and plan.build.requirements not in files:
        files = (plan.build.requirements, *files)
    return tuple(f for f in files if (Path(plan.project_dir) / f).is_file())


def stage_project(plan: Plan, docker: Docker | None = None) -> Staged:
    """Write the project's .dlbox/ (Dockerfile, ignore file, entrypoint) and fingerprint every
    build input; with DOCKER, also make sure that engine has the tools image (engine.tools)."""
    project_dir = Path(plan.project_dir)
    stage = project_dir / STAGE
    try:
        stage.mkdir(exist_ok=True)
    except OSError as exc:
        raise HostError(f"cannot write {stage}: {exc.strerror}") from None
    tools = ensure_tools(docker, plan.build.find_links) if docker is not None else tools_ref(plan.build.find_links)
    dockerfile = render_dockerfile(plan, tools=tools)
    h = hashlib.sha256(dockerfile.encode())
    _write(stage / "Dockerfile", dockerfile)
    _write(stage / "Dockerfile.dockerignore", render_dockerignore(bake=False))
    _write(stage / "entrypoint.sh", entrypoint_script())
    _write(stage / ".gitignore", "# dlbox's staging area: the Dockerfile is worth keeping, the rest is rebuilt\n*.tmp\nlock\n")
    _drop_old_links(stage)
    h.update(entrypoint_script().encode())
    _write(stage / "collect_ext.py", (Path(__file__).parent.parent / "templates" / "collect_ext.py").read_text())
    if plan.build.package is not None:
        _hash_package(project_dir, plan.build.package, h)
    if plan.build.locked is not None:
        h.update(f"lock {plan.build.locked.sha256}\n".encode())   # the image tag follows the lock
    else:   # no lock: the requirements file and every file it pulls in with -r/-c are the inputs
        for name in _requirement_files(plan):
            h.update(f"requirements {name}\n".encode() + (project_dir / name).read_bytes())
    give_to_owner(project_dir, stage, *stage.rglob("*"))
    return Staged(dockerfile=stage / "Dockerfile", fingerprint=h.hexdigest(), tools=tools)

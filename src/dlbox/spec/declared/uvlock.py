"""uv.lock: the versions uv resolved and where each comes from (read with tomllib)."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name

from dlbox.errors import SpecError
from dlbox.spec.declared.pyproject import load_toml
from dlbox.spec.declared.types import Collector, LockedPackage, UvLock

_SOURCE_KEYS = ("registry", "git", "editable", "virtual", "path", "url", "directory")


def read_uv_lock(project: Path, out: Collector) -> None:
    name = "uv.lock"
    data = load_toml(project / name, name)
    out.files.append(name)
    pkgs = data.get("package") or []
    if not isinstance(pkgs, list):
        raise SpecError(f"{name}: [[package]] entries expected", fix="regenerate it with `uv lock`")
    locked = []
    for p in pkgs:
        if not isinstance(p, dict) or "name" not in p:
            raise SpecError(f"{name}: a [[package]] without a name", fix="regenerate it with `uv lock`")
        src = p.get("source") or {}
        kind = next((k for k in _SOURCE_KEYS if k in src), None)
        markers = p.get("resolution-markers") or ()
        locked.append(LockedPackage(name=canonicalize_name(p["name"]), version=p.get("version"),
                                    source=f"{kind}:{src[kind]}" if kind else "",
                                    markers=tuple(m for m in markers if isinstance(m, str))))
    out.lock = UvLock(file=name, requires_python=data.get("requires-python"), packages=tuple(locked))
    out.notes.append(f"{name}: {len(locked)} locked packages (lock version {data.get('version', '?')})")

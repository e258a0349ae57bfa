"""Validated tables kept between runs: validating the same bytes again (and importing pydantic to
do it) was most of every `dlbox plan`'s start-up. A kept table is keyed by every byte it was made
from and trusted only when this user alone can write it."""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@lru_cache(maxsize=1)
def _digest() -> bytes | None:
    """The catalog's version: every byte the tables are made from (this package's JSON and Python,
    the row classes of spec.declared.catalog, the checks in dlbox.checked) and the Python that
    pickled them. Read once per process: every kept table is keyed by it. Pydantic's version is
    not part of it: what is kept is plain dataclasses, whatever validated them."""
    here = Path(__file__).parent
    digest = hashlib.sha256(sys.version.encode())
    try:
        for f in sorted([*here.glob("*.json"), *here.glob("*.py"), here.parent / "spec" / "declared" / "catalog.py",
                         here.parent / "checked.py"]):
            digest.update(f.name.encode() + f.read_bytes())
    except OSError:
        return None
    return digest.digest()


def _cache_file(name: str, made_from: bytes = b"") -> Path | None:
    """Where the validated table NAME is kept: the user's cache, under the catalog's version and
    MADE_FROM, so any change to what it was made from makes a new file."""
    digest = _digest()
    if digest is None:
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlbox" / "catalog"
    return base / f"{name}-{hashlib.sha256(digest + made_from).hexdigest()[:20]}.pickle"


def _trusted(path: Path) -> bool:
    """Only a file this user owns, in a directory this user owns, that nobody else can write."""
    try:
        for p in (path.parent, path):
            st = p.lstat()
            if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or stat.S_ISLNK(st.st_mode):
                return False
    except OSError:
        return False
    return True


# Catalog versions kept side by side: two installs of dlbox on one machine (a pipx one and a
# checkout) would otherwise evict each other's tables and validate them on every run.
VERSIONS_KEPT = 3


def validated(name: str, build: Callable[[], T], *, made_from: bytes = b"", keep: int = VERSIONS_KEPT) -> T:
    """BUILD() (read and validate a table), or what an earlier run of the same dlbox kept of it from
    the same catalog bytes and MADE_FROM (the bytes BUILD reads beyond the catalog's own). The KEEP
    files of NAME used last are kept (a few catalog versions; many specs, one per project being
    worked on). Validation is the cost of every `dlbox plan`'s start-up otherwise (pydantic's
    import, and a validator per class). A missing, stale, foreign or unreadable cache is rebuilt,
    never trusted; a cache that cannot be written is skipped."""
    path = _cache_file(name, made_from)
    if path is not None and _trusted(path):
        try:
            with path.open("rb") as f:
                value = pickle.load(f)
            os.utime(path)   # used last: kept longest
            return value
        except Exception:  # noqa: BLE001 - any damage means: validate again
            pass
    value = build()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
            kept = sorted((p for p in path.parent.glob(f"{name}-*.pickle") if p != path),
                          key=lambda p: p.stat().st_mtime, reverse=True)
            for old in kept[keep - 1:]:
                old.unlink(missing_ok=True)
        except OSError:
            pass
    return value

"""Validated catalog tables kept between runs: pydantic's validation of the same bytes was most
of every `dlbox plan`'s start-up after the imports. A kept table is keyed by every byte it was made
from and trusted only when this user alone can write it."""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
from functools import lru_cache
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


@lru_cache(maxsize=1)
def _digest() -> str | None:
    """The catalog's version: every byte the tables are made from (this package's JSON and Python,
    the row models of spec.declared.catalog) and the validator's version. Read once per process:
    every table's cache file is keyed by it."""
    here = Path(__file__).parent
    digest = hashlib.sha256(sys.version.encode())
    try:
        import pydantic

        digest.update(pydantic.VERSION.encode())
        for f in sorted([*here.glob("*.json"), *here.glob("*.py"), here.parent / "spec" / "declared" / "catalog.py"]):
            digest.update(f.name.encode() + f.read_bytes())
    except OSError:
        return None
    return digest.hexdigest()[:20]


def _cache_file(name: str) -> Path | None:
    """Where the validated table NAME is kept: the user's cache, under the catalog's version, so any
    change to what it was made from makes a new file."""
    digest = _digest()
    if digest is None:
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlbox" / "catalog"
    return base / f"{name}-{digest}.pickle"


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


def validated(name: str, build: Callable[[], T]) -> T:
    """BUILD() (read and validate a table), or what an earlier run of the same dlbox and the same
    catalog bytes kept of it. Validation is the cost of every `dlbox plan`'s start-up otherwise
    (pydantic builds a validator per row model). A missing, stale, foreign or unreadable cache is
    rebuilt, never trusted; a cache that cannot be written is skipped."""
    path = _cache_file(name)
    if path is not None and _trusted(path):
        try:
            with path.open("rb") as f:
                return pickle.load(f)
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
            for old in path.parent.glob(f"{name}-*.pickle"):
                if old != path:
                    old.unlink(missing_ok=True)
        except OSError:
            pass
    return value

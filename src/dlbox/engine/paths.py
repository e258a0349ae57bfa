"""Where dlbox keeps its own files: a cache dir (bootstrapped rootfs, CA bundles)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir(*parts: str) -> Path:
    base = Path(os.environ.get("DLBOX_CACHE") or platformdirs.user_cache_dir("dlbox"))
    d = base.joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    return d

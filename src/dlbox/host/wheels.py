"""torch-family wheels found in this host's local wheel directories (pip find-links)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True)
class LocalWheel:
    path: str
    name: str
    version: str  # "2.13.0+cpu"
    python_tags: tuple[str, ...]
    platform: str


_WHEEL = re.compile(r"^(torch|torchvision|torchaudio)-([^-]+)-([^-]+)-([^-]+)-(.+)\.whl$")


def scan_local_wheels(dirs: list[str], root: str = "/") -> tuple[LocalWheel, ...]:
    """torch/torchvision/torchaudio wheels in find_links directories (missing dirs are skipped).
    `root`: where the host's files are (a saved root); the paths reported are the host's."""
    found = []
    for d in dirs:
        try:
            names = sorted(os.listdir(os.path.join(root, d.lstrip("/"))))
        except OSError:
            continue
        for fn in names:
            m = _WHEEL.match(unquote(fn))
            if m:
                found.append(LocalWheel(os.path.join(d, fn), m.group(1), m.group(2),
                                        tuple(m.group(3).split(".")), m.group(5)))
    return tuple(found)

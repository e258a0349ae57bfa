"""Requirement names a project declares, read with `packaging` (PEP 508 names, normalised)."""

from __future__ import annotations

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from dlbox.spec import Spec


def requirement_name(line: str) -> str | None:
    """The canonical project name of one requirement line (`mamba_ssm>=2` -> `mamba-ssm`); None for
    options (`-r`, `--index-url`), comments and lines `packaging` cannot read (URLs, paths)."""
    text = line.split(" #", 1)[0].strip()
    if not text or text.startswith(("#", "-")):
        return None
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def requirement_names(spec: Spec) -> tuple[str, ...]:
    lines = list(spec.env.pip)
    if spec.env.requirements:
        lines += (spec.project_dir / spec.env.requirements).read_text().splitlines()
    return tuple(sorted({n for n in map(requirement_name, lines) if n}))

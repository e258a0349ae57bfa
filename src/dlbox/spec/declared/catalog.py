"""The data tables the project readers use (catalog/conda_pypi.json, system_deps.json,
import_names.json), validated on load: every row has a source, names are canonical."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Annotated

from packaging.utils import canonicalize_name

from dlbox.catalog import SourcedRow, row
from dlbox.catalog.cache import validated
from dlbox.checked import Rule, parse


def _when(v: str) -> str:
    if v not in ("run", "build"):
        raise ValueError("when is run or build")
    return v


def _specifier(v: str) -> str:
    from packaging.specifiers import SpecifierSet

    SpecifierSet(v)
    return v


def _requirement(v: str) -> str:
    from packaging.requirements import Requirement

    Requirement(v)
    return v


@row
class CondaRow(SourcedRow):
    conda: str
    pypi: str | None
    debian: tuple[str, ...] = ()
    reason: str = ""


@row
class SystemRow(SourcedRow):
    pypi: str            # canonical PyPI name, or a rule: @git, @sdist, @extension, @torch.compile
    debian: tuple[str, ...]
    when: Annotated[str, Rule(_when)]            # "run" | "build"
    reason: str


@row
class CapRow(SourcedRow):
    package: str         # canonical PyPI name
    versions: Annotated[str, Rule(_specifier)]   # PEP 440 specifier: the releases that need the cap
    cap: Annotated[str, Rule(_requirement)]      # a PEP 508 requirement used as a constraint ("huggingface-hub<1")
    reason: str


@row
class ImportRow(SourcedRow):
    module: str
    pypi: str


def _rows(name: str) -> list[dict]:
    return json.loads(resources.files("dlbox.catalog").joinpath(name).read_text())["rows"]


@lru_cache(maxsize=1)
def conda_rows() -> dict[str, CondaRow]:
    return validated("conda_pypi", _conda_rows)


def _conda_rows() -> dict[str, CondaRow]:
    rows = [parse(CondaRow, r) for r in _rows("conda_pypi.json")]
    for r in rows:
        if r.pypi is None and not r.reason:
            raise ValueError(f"conda_pypi.json: {r.conda} maps to nothing and gives no reason")
    return {r.conda: r for r in rows}


@lru_cache(maxsize=1)
def system_rows() -> dict[str, SystemRow]:
    return validated("system_deps", _system_rows)


def _system_rows() -> dict[str, SystemRow]:
    rows = [parse(SystemRow, r) for r in _rows("system_deps.json")]
    for r in rows:
        if not r.pypi.startswith("@") and canonicalize_name(r.pypi) != r.pypi:
            raise ValueError(f"system_deps.json: {r.pypi} is not a canonical PyPI name")
    return {r.pypi: r for r in rows}


@lru_cache(maxsize=1)
def import_rows() -> dict[str, str]:
    return validated("import_names", _import_rows)


def _import_rows() -> dict[str, str]:
    return {r.module: canonicalize_name(r.pypi) for r in (parse(ImportRow, x) for x in _rows("import_names.json"))}


@lru_cache(maxsize=1)
def cap_rows() -> tuple[CapRow, ...]:
    """catalog/dep_caps.json: upper bounds old releases need but never declared."""
    return validated("dep_caps", lambda: tuple(parse(CapRow, r) for r in _rows("dep_caps.json")))

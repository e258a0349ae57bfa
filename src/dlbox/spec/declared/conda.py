"""environment.yml, read with ruamel.yaml (not regexes).

Channels are never packages. `dependencies` entries are conda MatchSpecs ("numpy=1.19",
"conda-forge::pytorch>=2", "cudatoolkit=11.3"); the `pip:` list is a requirements file in all
but name (conda hands it to pip), so it goes through the same pip parser, with paths relative to
environment.yml. Conda names become PyPI names through catalog/conda_pypi.json (a source per
row); names not in the table are taken as PyPI names (conda-forge names packages after PyPI:
https://conda-forge.org/docs/maintainer/adding_pkgs/#use-the-same-name-as-on-pypi) and said so.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from dlbox.errors import SpecError
from dlbox.spec.declared.catalog import conda_rows
from dlbox.spec.declared.requirements import read_requirement_lines
from dlbox.spec.declared.types import (
    Collector,
    Dep,
    Origin,
    PythonRange,
    SystemNeed,
    Unmapped,
)

_SPEC = re.compile(r"^(?:(?P<channel>[\w./-]+)::)?(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<rest>.*)$")


def read_environment(project: Path, path: Path, out: Collector) -> list[SystemNeed]:
    """Add what environment.yml declares to `out`; return the system packages its conda names imply."""
    from ruamel.yaml import YAML  # only projects with an environment.yml pay for it
    from ruamel.yaml.error import YAMLError

    name = path.name
    try:
        doc = YAML(typ="rt").load(path.read_text())
    except YAMLError as exc:
        raise SpecError(f"{name}: not valid YAML: {str(exc).splitlines()[0]}", fix="fix the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{name}: cannot read it: {exc}") from None
    out.files.append(name)
    if doc is None:
        out.notes.append(f"{name}: empty")
        return []
    if not isinstance(doc, dict):
        raise SpecError(f"{name}: expected a mapping with 'dependencies:', got {type(doc).__name__}")
    deps = doc.get("dependencies") or []
    if not isinstance(deps, list):
        raise SpecError(f"{name}:{_line(doc, 'dependencies')}: 'dependencies' must be a list")
    channels = [str(c) for c in (doc.get("channels") or [])]
    if channels:
        out.notes.append(f"{name}: conda channels {', '.join(channels)} (not packages; dlbox installs from PyPI)")
    rows = conda_rows()
    system: list[SystemNeed] = []
    before = len(out.deps)
    for i, item in enumerate(deps):
        line = deps.lc.item(i)[0] + 1 if hasattr(deps, "lc") else None
        where = Origin(name, line)
        if isinstance(item, dict) and "pip" in item:
            pip = item["pip"] or []
            if not isinstance(pip, list):
                raise SpecError(f"{where}: 'pip:' must be a list of requirement lines")
            lines = [(pip.lc.item(j)[0] + 1, str(text)) for j, text in enumerate(pip)]
            read_requirement_lines(project, path, lines, out, source="conda-pip")
            continue
        if not isinstance(item, str):
            raise SpecError(f"{where}: expected a package spec such as \"numpy=1.24\", got {item!r}")
        system += _conda_spec(item.strip(), where, rows, out)
    same = [d.name for d in out.deps[before:] if d.source == "conda" and d.name not in
            {r.pypi for r in rows.values() if r.pypi}]
    if same:
        out.notes.append(f"{name}: conda packages taken as the PyPI packages of the same name: {', '.join(same)}")
    return system


def _line(doc, key: str) -> int | str:
    try:
        return doc.lc.key(key)[0] + 1
    except (AttributeError, KeyError):
        return ""


def _conda_spec(text: str, where: Origin, rows: dict, out: Collector) -> list[SystemNeed]:
    m = _SPEC.match(text)
    if not m:
        raise SpecError(f"{where}: {text!r} is not a conda package spec", fix='write it like "numpy=1.24" or "numpy"')
    conda_name, rest = m.group("name").lower(), m.group("rest").strip()
    spec = conda_version(rest)
    if conda_name == "python":
        if spec:
            out.python = PythonRange(specifier=spec, origin=where)
        return []
    if conda_name == "pip":
        return []
    row = rows.get(conda_name)
    if row is not None and row.pypi is None:
        if row.debian:
            return [SystemNeed(debian=tuple(row.debian), because=conda_name, reason=row.reason,
                               source=row.source, origin=where)]
        out.unmapped.append(Unmapped(name=conda_name, origin=where, reason=row.reason))
        return []
    pypi = canonicalize_name(row.pypi if row else conda_name)
    if spec is None:
        out.notes.append(f"{where}: {text!r}: conda version {rest!r} has no pip equivalent; any version taken")
        spec = ""
    requirement = pypi + spec
    out.deps.append(Dep(name=pypi, requirement=requirement, origin=where, specifier=spec, source="conda"))
    return []


def conda_version(rest: str) -> str | None:
    """A conda MatchSpec version ("=1.19", "1.19.*", ">=1.2,<2", "=1.7.0=py3.8_0") as a PEP 440
    specifier; "" for any version, None when it has no equivalent (alternatives with '|')."""
    rest = rest.strip()
    if not rest:
        return ""
    if "|" in rest:
        return None
    if rest.startswith("=") and not rest.startswith("=="):
        version = rest[1:].split("=", 1)[0].strip()   # the part after a second '=' is a build string
        spec = f"=={version}" if version.endswith("*") else f"=={version}.*"
    elif rest[0].isdigit():
        version = rest.split()[0].split("=", 1)[0]  # "1.19.*", "1.19 py38_0", "1.7.0=py38"
        exact = "=" in rest.split()[0] or (" " in rest and not version.endswith("*"))
        spec = f"=={version}" if version.endswith("*") or exact else f"=={version}.*"
    else:
        spec = rest.split()[0]
    spec = spec.replace(".*.*", ".*")
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        return None
    return spec

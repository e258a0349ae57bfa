"""pyproject.toml: [project] dependencies and extras, requires-python, [dependency-groups]
(PEP 735, include-group resolved by the `dependency-groups` library), [build-system], and
[tool.uv] sources, indexes and dev-dependencies.

tomllib gives no line numbers; each item's line is the first line of the file that holds its
exact quoted text (good enough to point a person at it).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from dependency_groups import resolve as resolve_group
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from dlbox.errors import SpecError
from dlbox.spec.declared.types import (
    Collector,
    Dep,
    FindLinks,
    Index,
    LocalPackage,
    Origin,
    PythonRange,
)


class Lines:
    """Find the line of a quoted value or a key in a text file."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def of(self, needle: str, *, after: int = 0) -> int | None:
        for quoted in (f'"{needle}"', f"'{needle}'", needle):
            for n, line in enumerate(self.lines[after:], after + 1):
                if quoted in line:
                    return n
        return None

    def table(self, header: str) -> int | None:
        return next((n for n, ln in enumerate(self.lines, 1) if ln.strip().startswith(f"[{header}]")), None)


def load_toml(path: Path, name: str) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{name}: not valid TOML: {exc}", fix="fix the file (it must parse as TOML)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{name}: cannot read it: {exc}") from None


def parse_requirement(text: str, where: Origin, *, group: str | None, source: str) -> Dep:
    try:
        r = Requirement(text)
    except InvalidRequirement as exc:
        raise SpecError(f"{where}: {text!r} is not a valid requirement: {str(exc).splitlines()[0]}",
                        fix="write it as PEP 508 says, e.g. \"torch>=2.1\" or \"pkg @ git+https://…\"") from None
    return Dep(name=canonicalize_name(r.name), requirement=str(r), origin=where, specifier=str(r.specifier),
               extras=tuple(sorted(r.extras)), marker=str(r.marker) if r.marker else None, url=r.url,
               group=group, source=source)


def read_pyproject(project: Path, out: Collector) -> dict:
    """Add what pyproject.toml declares to `out`; return the parsed document."""
    path = project / "pyproject.toml"
    name = "pyproject.toml"
    data = load_toml(path, name)
    out.files.append(name)
    lines = Lines(path.read_text())
    proj = data.get("project") or {}
    if not isinstance(proj, dict):
        raise SpecError(f"{name}: [project] must be a table")

    def origin(text: str) -> Origin:
        return Origin(name, lines.of(text))

    def add(reqs: object, group: str | None, table: str) -> None:
        if not isinstance(reqs, list) or not all(isinstance(r, str) for r in reqs):
            raise SpecError(f"{name}:{lines.table(table) or ''}: {table} must be a list of requirement strings")
        for r in reqs:
            out.deps.append(parse_requirement(r, origin(r), group=group, source="pyproject"))

    add(proj.get("dependencies", []), None, "project")
    for extra, reqs in (proj.get("optional-dependencies") or {}).items():
        add(reqs, f"extra:{extra}", "project.optional-dependencies")
    rp = proj.get("requires-python")
    if rp:
        try:
            SpecifierSet(rp)
        except InvalidSpecifier:
            raise SpecError(f"{origin(rp)}: requires-python = {rp!r} is not a version range",
                            fix='write it like ">=3.9" or ">=3.9,<3.13"') from None
        out.python = PythonRange(specifier=rp, origin=origin(rp))
    _groups(data, name, lines, out)
    uv = (data.get("tool") or {}).get("uv") or {}
    _uv(uv, name, lines, out)
    _package(data, project, name, lines, out)
    return data


def _groups(data: dict, name: str, lines: Lines, out: Collector) -> None:
    groups = data.get("dependency-groups") or {}
    for group in groups:
        try:
            reqs = resolve_group(groups, group)
        except (ValueError, TypeError, LookupError) as exc:
            raise SpecError(f"{name}:{lines.table('dependency-groups') or ''}: [dependency-groups] {group}: {exc}",
                            fix="each group is a list of requirement strings or {include-group = \"NAME\"}") from None
        for r in reqs:
            out.deps.append(parse_requirement(r, Origin(name, lines.of(r)), group=f"group:{group}",
                                              source="pyproject"))


def _uv(uv: dict, name: str, lines: Lines, out: Collector) -> None:
    for r in uv.get("dev-dependencies") or ():
        out.deps.append(parse_requirement(r, Origin(name, lines.of(r)), group="dev", source="pyproject"))
    pinned: dict[str, list[str]] = {}
    for pkg, src in (uv.get("sources") or {}).items():
        for s in src if isinstance(src, list) else [src]:
            if isinstance(s, dict) and s.get("index"):
                pinned.setdefault(s["index"], []).append(canonicalize_name(pkg))
            elif isinstance(s, dict) and (s.get("git") or s.get("url") or s.get("path")):
                _source_url(pkg, s, name, lines, out)
    for idx in uv.get("index") or ():
        if not isinstance(idx, dict) or "url" not in idx:
            raise SpecError(f"{name}:{lines.table('[tool.uv.index]') or ''}: every [[tool.uv.index]] needs a url")
        out.indexes.append(Index(
            url=idx["url"], kind="primary" if idx.get("default") else "extra",
            origin=Origin(name, lines.of(idx["url"])), name=idx.get("name"), explicit=bool(idx.get("explicit")),
            packages=tuple(pinned.get(idx.get("name") or "", ()))))
    if uv.get("index-url"):
        out.indexes.append(Index(url=uv["index-url"], kind="primary", origin=Origin(name, lines.of(uv["index-url"]))))
    for url in uv.get("extra-index-url") or ():
        out.indexes.append(Index(url=url, kind="extra", origin=Origin(name, lines.of(url))))
    for loc in uv.get("find-links") or ():
        out.find_links.append(FindLinks(location=loc, origin=Origin(name, lines.of(loc))))


def _source_url(pkg: str, s: dict, name: str, lines: Lines, out: Collector) -> None:
    """[tool.uv.sources] pkg = { git = … } / { path = … }: the dep gets that URL (uv reads it so)."""
    key = canonicalize_name(pkg)
    if s.get("git"):
        ref = s.get("rev") or s.get("tag") or s.get("branch")
        url = f"git+{s['git']}" + (f"@{ref}" if ref else "")
    elif s.get("url"):
        url = s["url"]
    else:
        if s.get("workspace"):
            return
        out.local_packages.append(LocalPackage(path=s["path"], origin=Origin(name, lines.of(s["path"])),
                                               name=key, editable=bool(s.get("editable"))))
        return
    for i, d in enumerate(out.deps):
        if d.name == key and d.url is None:
            out.deps[i] = Dep(**{**d.__dict__, "url": url, "requirement": f"{d.name} @ {url}"})


def _package(data: dict, project: Path, name: str, lines: Lines, out: Collector) -> None:
    """The project is a package when it has a [build-system] (uv: and is not `package = false`)."""
    bs = data.get("build-system")
    uv_package = ((data.get("tool") or {}).get("uv") or {}).get("package")
    if (not isinstance(bs, dict) and uv_package is not True) or uv_package is False:
        return
    bs = bs if isinstance(bs, dict) else {}
    out.local_packages.append(LocalPackage(
        path=".", origin=Origin(name, lines.table("build-system")), editable=True,
        name=canonicalize_name((data.get("project") or {}).get("name") or project.name),
        backend=bs.get("build-backend") or "setuptools.build_meta:__legacy__",
        build_requires=tuple(bs.get("requires") or ())))

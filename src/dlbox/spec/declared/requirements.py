"""Requirements files with pip's whole syntax, read by pip's own parser (pip-requirements-parser).

-r/-c includes (relative to the including file, as pip does), -e . / -e path, git+ and URL
requirements, --index-url/--extra-index-url/--find-links/--no-index, markers, --hash options and
local versions (torch==2.2.2+cu121). Every item keeps its file:line. A missing include, an
include cycle or a line pip would reject is a SpecError naming the line.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


def _on_first_use(name: str) -> None:
    """Import the module NAME when it is first used rather than now (the standard library's
    LazyLoader). pip-requirements-parser imports urllib.request, and with it http.client, email
    and ssl, about a tenth of a `dlbox plan`, for the one call it makes on a file: URL."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, module)


_on_first_use("urllib.request")
from pip_requirements_parser import InstallationError, RequirementsFile  # noqa: E402 - after the line above

from dlbox.errors import SpecError
from dlbox.spec.declared.types import (
    Collector,
    Dep,
    FindLinks,
    Index,
    LocalPackage,
    Origin,
)

_IGNORED_OPTIONS = {"pre", "prefer_binary", "trusted_hosts", "use_feature", "require_hashes",
                    "only_binary", "no_binary", "global_options", "config_settings"}


def rel(path: Path, project: Path) -> str:
    try:
        return str(path.resolve().relative_to(project.resolve()))
    except ValueError:
        return str(path)


def read_requirements(project: Path, file: Path, out: Collector, *, constraint: bool = False,
                      source: str = "requirements", _stack: tuple[Path, ...] = ()) -> None:
    """Add everything `file` (and what it includes) declares to `out`."""
    file = file.resolve()
    name = rel(file, project)
    if file in _stack:
        chain = " -> ".join(rel(p, project) for p in (*_stack, file))
        raise SpecError(f"{name}: requirements files include each other ({chain})",
                        fix="remove one of the -r/-c lines")
    out.files.append(name)
    out.requirement_files.append(name)
    _read(project, file, file, None, out, constraint=constraint, source=source, stack=(*_stack, file))


def read_requirement_lines(project: Path, file: Path, lines: list[tuple[int, str]], out: Collector, *,
                           source: str) -> None:
    """Requirement lines embedded in another file (environment.yml's pip list): `lines` are
    (line in `file`, text). Paths in them are relative to `file`, as conda passes them to pip."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "requirements.txt"
        scratch.write_text("".join(text.replace("\n", " ") + "\n" for _, text in lines))
        line_map = {i: n for i, (n, _) in enumerate(lines, 1)}
        _read(project, scratch, file.resolve(), line_map, out, constraint=False, source=source,
              stack=(file.resolve(),))


def pip_lines(project: Path, lines: Iterable[str], *, where: str = "dlbox.toml [env] pip") -> tuple[Dep, ...]:
    """Requirement lines from dlbox.toml's `[env] pip`, read by the same pip parser as the
    project's requirements files (one parser serves the plan). Each Dep's origin is `where`."""
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return ()
    out = Collector()
    try:
        read_requirement_lines(project, project / "dlbox.toml", list(enumerate(lines, 1)), out, source="dlbox.toml")
    except SpecError as exc:
        raise SpecError(exc.message.replace("dlbox.toml:", f"{where} item ", 1), fix=exc.fix) from None
    return tuple(replace(d, origin=Origin(where)) for d in out.deps)


def _read(project: Path, parse_path: Path, file: Path, line_map: dict[int, int] | None, out: Collector, *,
          constraint: bool, source: str, stack: tuple[Path, ...]) -> None:
    name = rel(file, project)
    try:
        rf = RequirementsFile.from_file(str(parse_path), include_nested=False)
    except (InstallationError, OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{name}: cannot read it as a requirements file: {_first_line(exc)}") from None
    fix_line = (lambda n: line_map.get(n, n)) if line_map else (lambda n: n)
    for bad in rf.invalid_lines:
        line = bad.requirement_line
        raise SpecError(
            f"{name}:{fix_line(line.line_number)}: {line.line.strip()!r}: {_first_line(bad.error_message)}",
            fix="write it as pip accepts it (https://pip.pypa.io/en/stable/reference/requirements-file-format/)",
        )
    for opt in rf.options:
        _option(project, file, opt, fix_line(opt.line_number), out, source=source, stack=stack)
    for req in rf.requirements:
        _requirement(project, file, req, fix_line(req.line_number), out,
                     constraint=constraint or req.is_constraint, source=source)


def _first_line(exc: object) -> str:
    """The message of a pip error without the echoed line and its caret marker."""
    text = str(exc).replace("|n", "\n").replace(": : ", ": ").strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _option(project: Path, file: Path, opt, line: int, out: Collector, *, source: str,
            stack: tuple[Path, ...]) -> None:
    where = Origin(rel(file, project), line)
    o = opt.options
    for key in ("requirements", "constraints"):
        for target in o.get(key) or ():
            path = _relative_to(file, target)
            if target.startswith(("http://", "https://")):
                raise SpecError(f"{where}: -{key[0]} {target}: dlbox reads only included files in the project",
                                fix="download the file into the project and include it by path")
            if not path.is_file():
                raise SpecError(f"{where}: -{key[0]} {target}: no such file ({rel(path, project)})",
                                fix="fix the path (it is relative to the file that includes it) or remove the line")
            read_requirements(project, path, out, constraint=key == "constraints", source=source, _stack=stack)
    if o.get("index_url"):
        out.indexes.append(Index(url=o["index_url"], kind="primary", origin=where))
    for url in o.get("extra_index_urls") or ():
        out.indexes.append(Index(url=url, kind="extra", origin=where))
    for loc in o.get("find_links") or ():
        local = _relative_to(file, loc)
        if "://" not in loc and local.exists():
            loc = rel(local, project)
        out.find_links.append(FindLinks(location=loc, origin=where))
    if o.get("no_index"):
        out.no_index = where
    unknown = sorted(k for k, v in o.items() if v and k not in _IGNORED_OPTIONS and k not in (
        "requirements", "constraints", "index_url", "extra_index_urls", "find_links", "no_index"))
    if unknown:
        out.notes.append(f"{where}: pip option {', '.join(unknown)} not used by dlbox")


def _relative_to(file: Path, target: str) -> Path:
    p = Path(target).expanduser()
    return p if p.is_absolute() else file.parent / p


def _requirement(project: Path, file: Path, req, line: int, out: Collector, *, constraint: bool,
                 source: str) -> None:
    where = Origin(rel(file, project), line)
    link = req.link.url if req.link else None
    parsed = req.req
    hashes = tuple(req.hash_options or ())
    marker = str(req.marker) if req.marker else (str(parsed.marker) if parsed and parsed.marker else None)
    if link and _is_local_dir(file, link):
        path = _relative_to(file, link.removeprefix("file://").removeprefix("file:"))
        if not path.exists():
            raise SpecError(f"{where}: {link}: no such directory ({rel(path, project)})",
                            fix="fix the path (it is relative to the requirements file) or remove the line")
        relpath = rel(path, project)
        out.local_packages.append(LocalPackage(
            path="." if relpath == "." else f"./{relpath}" if not relpath.startswith("/") else relpath,
            origin=where, name=canonicalize_name(req.name) if req.name else None, editable=req.is_editable))
        return
    name = canonicalize_name(req.name) if req.name else ""
    if not name and link:
        out.notes.append(f"{where}: {link} has no package name (add #egg=NAME); installed as written")
    specifier = str(parsed.specifier) if parsed is not None and parsed.specifier else ""
    extras = tuple(sorted(parsed.extras)) if parsed is not None else ()
    text = _pep508(name, extras, specifier, link, marker)
    dep = Dep(name=name, requirement=text, origin=where, specifier=specifier, extras=extras, marker=marker,
              url=link, editable=req.is_editable, hashes=hashes, source=source)
    (out.constraints if constraint else out.deps).append(dep)


def _is_local_dir(file: Path, link: str) -> bool:
    if link.startswith("file:"):
        link = link.removeprefix("file://").removeprefix("file:")
    elif "://" in link or link.split("+", 1)[0] in ("git", "hg", "svn", "bzr"):
        return False
    if link.endswith((".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")):
        return False  # a local archive: installed as written
    return _relative_to(file, link).is_dir() or link.startswith((".", "/"))


def _pep508(name: str, extras: tuple[str, ...], specifier: str, url: str | None, marker: str | None) -> str:
    if not name:
        return ""
    text = name + (f"[{','.join(extras)}]" if extras else "")
    text += f" @ {url}" if url else specifier
    if marker:
        text += ("; " if not url else " ; ") + marker
    try:
        Requirement(text)
    except InvalidRequirement:
        return ""
    return text

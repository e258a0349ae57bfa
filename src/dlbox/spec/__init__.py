"""Spec: what the user wrote in `dlbox.toml` (or `[tool.dlbox]` in pyproject.toml), validated.

Unknown keys and wrong types are `SpecError`s naming the file, the line and the valid
choices. Paths are kept as written; `Spec.project_dir` anchors relative ones.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from dataclasses import asdict, dataclass, fields
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from dlbox.checked import Invalid, parse_json
from dlbox.errors import SpecError
from dlbox.redact import has_userinfo
from dlbox.spec.tables import SECTIONS, EnvSpec, NetSpec, RunSpec, SpecDoc, split_mount

__all__ = ["SECTIONS", "EnvSpec", "NetSpec", "RunSpec", "Spec", "SpecDoc", "find_spec_file", "load_spec", "locate",
           "split_mount"]

SPEC_FILE = "dlbox.toml"


@dataclass(frozen=True)
class Spec:
    """A validated spec plus where it came from."""

    doc: SpecDoc
    file: Path | None
    project_dir: Path

    @property
    def env(self) -> EnvSpec:
        return self.doc.env

    @property
    def run(self) -> RunSpec:
        return self.doc.run

    @property
    def net(self) -> NetSpec:
        return self.doc.net

    @property
    def name(self) -> str:
        if self.doc.name:
            return self.doc.name
        slug = re.sub(r"[^a-z0-9_.-]+", "-", self.project_dir.name.lower()).strip("-.")
        return slug or "project"

    def to_dict(self) -> dict:
        return asdict(self.doc)


# ---------------------------------------------------------------------------------------------
# loading


def find_spec_file(project_dir: Path) -> tuple[Path | None, str]:
    """The file holding the spec and the TOML table prefix inside it ("" or "tool.dlbox.")."""
    f = project_dir / SPEC_FILE
    if f.is_file():
        return f, ""
    pp = project_dir / "pyproject.toml"
    if pp.is_file():
        try:
            data = tomllib.loads(pp.read_bytes().decode("utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):   # not ours to judge: no [tool.dlbox]
            return None, ""
        if "dlbox" in data.get("tool", {}):
            return pp, "tool.dlbox."
    return None, ""


def load_spec(project_dir: Path | str = ".", *, required: bool = True) -> Spec:
    """Read and validate the project's spec. Raises SpecError naming file and line."""
    project_dir = Path(project_dir).expanduser().resolve()
    if not project_dir.is_dir():
        raise SpecError(f"{project_dir}: no such project directory")
    file, prefix = find_spec_file(project_dir)
    if file is None:
        if required:
            raise SpecError(
                f"no {SPEC_FILE} in {project_dir} (nor [tool.dlbox] in pyproject.toml)",
                fix=f"dlbox init {project_dir}",
            )
        return Spec(doc=SpecDoc(), file=None, project_dir=project_dir)
    from dlbox.spec.textfile import read_user_text

    text = read_user_text(file, "a dlbox spec", error=SpecError)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{file}: not valid TOML: {exc}") from None
    if prefix:
        raw = raw["tool"]["dlbox"]
    doc = _validate(raw, text, file, prefix)
    spec = Spec(doc=doc, file=file, project_dir=project_dir)
    _check_paths(spec, text, prefix)
    return spec


def _validate(raw: dict, text: str, file: Path, prefix: str) -> SpecDoc:
    """RAW as a SpecDoc, or what an earlier run kept of the same bytes (`catalog.cache`: checking
    them means importing pydantic, most of a `dlbox plan`). A spec that holds a password in a URL
    is checked every time rather than copied into the cache."""
    data = json.dumps(raw, default=_toml_only)   # in the file's order: its first mistake is the one named
    if has_userinfo(data):
        return _check(data, text, file, prefix)
    from dlbox.catalog.cache import validated

    return validated("spec", lambda: _check(data, text, file, prefix), made_from=_checker_source() + data.encode(),
                     keep=SPECS_KEPT)


@cache
def _checker_source() -> bytes:
    """The code that checks a spec (read once per process): a change to it checks kept specs again."""
    return b"".join(Path(__file__).with_name(n).read_bytes() for n in ("__init__.py", "tables.py", "grammar.py"))


def _toml_only(value: Any) -> dict:
    """TOML's dates and times, which JSON has not: an object no field accepts, named in the error."""
    return {_DATETIME: value.isoformat()}


_DATETIME = "TOML date/time"
SPECS_KEPT = 64   # specs checked before, by content: the projects a user works on


def _check(data: str, text: str, file: Path, prefix: str) -> SpecDoc:
    try:
        return parse_json(SpecDoc, data, strict=True)
    except Invalid as exc:
        raise SpecError(_describe(exc.errors[0], text, file, prefix)) from None


def _describe(err: dict, text: str, file: Path, prefix: str) -> str:
    loc = [str(p) for p in err["loc"]]
    section = loc[0] if len(loc) > 1 and loc[0] in SECTIONS else None
    key = loc[1] if section else loc[0]
    line = locate(text, prefix + section if section else prefix.rstrip("."), key)
    where = f"{file}:{line}" if line else str(file)
    table = f"[{prefix}{section}]" if section else (f"[{prefix.rstrip('.')}]" if prefix else "the top level")
    model = SECTIONS[section] if section else SpecDoc
    if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        valid = [f.name for f in fields(model)]
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{where}: unknown key '{key}' in {table}{hint}; valid keys: {', '.join(valid)}"
    what = f"'{key}' in {table}" if section else f"'{key}'"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "literal_error":
        msg = "expected one of " + err["ctx"]["expected"]
    elif err["type"].endswith("_type"):
        annotation = get_type_hints(model).get(key)
        expected = _type_name(annotation) if annotation else "another type"
        got = err.get("input")
        got = f"a {_DATETIME} {got[_DATETIME]}" if isinstance(got, dict) and _DATETIME in got else f"{type(got).__name__} {got!r}"
        msg = f"expected {expected}, got {got}"
    return f"{where}: {what}: {msg}"


def _type_name(annotation: Any) -> str:
    """A field's type in the user's words: "a string or an integer", "a list of strings, 'auto' or 'none'"."""
    words = _type_words(annotation)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _type_words(t: Any) -> list[str]:
    origin, args = get_origin(t), get_args(t)
    if origin in (Union, UnionType):
        return [w for a in args if a is not type(None) for w in _type_words(a)]
    if origin is Literal:
        return [repr(a) for a in args]
    if origin is list:
        return ["a list of " + ("strings" if args == (str,) else "values")]
    if origin is dict:
        return ["a table of " + ("strings" if args[1:] == (str,) else "values")]
    if t is bool:
        return ["true", "false"]
    return [{str: "a string", int: "an integer", float: "a number"}.get(t, getattr(t, "__name__", str(t)))]


def locate(text: str, table: str, key: str) -> int | None:
    """1-based line of `key` inside `[table]` (table "" = top level), else of the table header."""
    current = ""
    header_line = None
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        m = re.match(r"^\[([^\[\]]+)\]", s)
        if m:
            current = m.group(1).strip().replace(" ", "")
            if current == (f"{table}.{key}" if table else key):
                return n  # the key is itself a table: [envv]
            if current == table:
                header_line = n
            continue
        if current == table and re.match(rf"^[\"']?{re.escape(key)}[\"']?\s*=", s):
            return n
        if table and current == "" and re.match(rf"^{re.escape(table)}\.{re.escape(key)}\s*=", s):
            return n  # dotted keys: env.python = "3.11"
    return header_line


def _check_paths(spec: Spec, text: str, prefix: str) -> None:
    req = spec.env.requirements
    if req and not (spec.project_dir / req).resolve().is_relative_to(spec.project_dir.resolve()):
        # the image is built from the project directory: BuildKit would read ../x.txt as the
        # project's own x.txt, and a change of the outside file would never rebuild
        line = locate(text, prefix + "env", "requirements")
        where = spec.project_dir / req
        if os.path.normpath(where).startswith(str(spec.project_dir) + os.sep):
            what, fix = f"links to {where.resolve()}", f"replace the link with a copy: cp --remove-destination {where.resolve()} {where}"
        else:
            what, fix = "is", f"copy the file into the project (cp {req} {spec.project_dir}/) and name the copy"
        raise SpecError(f"{spec.file}:{line}: [env] requirements = {req!r} {what} outside the project directory "
                        f"{spec.project_dir}, which is all a build can see", fix=fix)
    if req and not (spec.project_dir / req).is_file():
        line = locate(text, prefix + "env", "requirements")
        raise SpecError(
            f"{spec.file}:{line}: [env] requirements = {req!r}: no such file in {spec.project_dir}",
            fix="fix the path, or remove the key to install no requirements file",
        )
    if isinstance(spec.env.find_links, list):
        for d in spec.env.find_links:
            p = Path(d).expanduser()
            p = p if p.is_absolute() else spec.project_dir / p
            if not p.is_dir():
                line = locate(text, prefix + "env", "find_links")
                raise SpecError(f"{spec.file}:{line}: [env] find_links entry {d!r} is not a directory")

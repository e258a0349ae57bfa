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
from pathlib import Path
from dataclasses import asdict, dataclass, field, fields
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from dlbox.checked import Rule, Invalid, parse_json
from dlbox.errors import SpecError
from dlbox.spec import grammar

SPEC_FILE = "dlbox.toml"

_VERSION = re.compile(r"^\d+(\.\d+){0,2}([a-z0-9.+]*)$")
_PY = re.compile(r"^3\.\d{1,2}$")
_CUDA = re.compile(r"^\d{1,2}\.\d$")
_SIZE = re.compile(r"^\d+(\.\d+)?[bkmg]?b?$", re.I)
_PORT = re.compile(r"^(?:(\d{1,5}):)?(\d{1,5})(?:/(tcp|udp))?$")
_GPUS = re.compile(r"^(auto|all|none|\d+|\d+(,\d+)*)$")


def _as_list(v: Any) -> Any:
    return [v] if isinstance(v, (str, int)) else v


# Each table is a frozen dataclass read by `dlbox.checked` with no coercion (strict: 3.11 is not
# "3.11", "yes" is not true) and no unknown key. A field's rule is the function in its `Rule`.
table = dataclass(frozen=True, kw_only=True)
_STRICT = {"extra": "forbid", "strict": True}


def _python(v: str) -> str:
    if not _PY.match(v):
        raise ValueError(f"expected a Python minor version such as \"3.11\", got {v!r}")
    return v


def _torch(v: str) -> str:
    if v not in ("auto", "none") and not _VERSION.match(v):
        raise ValueError(f'expected "auto", "none" or a version such as "2.3.1", got {v!r}')
    return v


def _cuda(v: str) -> str:
    if v != "auto" and not _CUDA.match(v):
        raise ValueError(f'expected "auto" or a CUDA version such as "12.1", got {v!r}')
    return v


def _base(v: str) -> str:
    return v if v == "auto" else grammar.image_ref(v)


def _apt(v: list[str]) -> list[str]:
    return [grammar.apt_package(p) for p in v]


def _pip(v: list[str]) -> list[str]:
    return [grammar.pip_requirement(p) for p in v]


def _requirements(v: str | None) -> str | None:
    return None if v is None else grammar.project_path(v)


def _paths(v: Any) -> Any:
    return [grammar.no_control(d) for d in v] if isinstance(v, list) else v


@table
class EnvSpec:
    __pydantic_config__ = _STRICT
    python: Annotated[str, Rule(_python)] = "3.11"
    torch: Annotated[str, Rule(_torch)] = "auto"
    cuda: Annotated[str, Rule(_cuda)] = "auto"
    base: Annotated[str, Rule(_base)] = "auto"
    flavor: Literal["runtime", "devel"] = "runtime"
    apt: Annotated[list[str], Rule(_apt)] = field(default_factory=list)
    pip: Annotated[list[str], Rule(_pip)] = field(default_factory=list)
    requirements: Annotated[str | None, Rule(_requirements)] = None
    find_links: Annotated[list[str] | Literal["auto", "none"], Rule(_paths)] = "auto"
    compiler: bool | Literal["auto"] = "auto"   # g++ + Python headers (torch.compile); auto: when the code needs it


def _env(v: dict[str, str]) -> dict[str, str]:
    for k, val in v.items():
        grammar.env_name(k)
        grammar.no_control(val)
    return v


def _command(v: str | list[str] | None) -> str | list[str] | None:
    for part in ([v] if isinstance(v, str) else v or []):
        grammar.no_control(part)
    return v


def _secrets(v: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
    for name in v:
        grammar.env_name(name)
    if isinstance(v, dict):
        for name, src in v.items():
            grammar.no_control(src)
            if not (src == "env" or re.match(r"^env:[A-Za-z_][A-Za-z0-9_]*$", src) or src.startswith("file:")):
                raise ValueError(f'secret {name}: expected "env", "env:VARIABLE" or "file:PATH", got {src!r}')
    return v


def _ports(v: list[str]) -> list[str]:
    for p in v:
        m = _PORT.match(str(p))
        if not m or any(int(x) > 65535 or int(x) == 0 for x in m.groups()[:2] if x):
            raise ValueError(f'expected a port such as "7860" or "8080:80", got {p!r}')
    return v


def _gpus(v: str | int) -> str | int:
    if not _GPUS.match(str(v)):
        raise ValueError(f'expected "auto", "all", "none", a count or device ids such as "0,2", got {v!r}')
    return v


def _shm(v: str) -> str:
    if v != "host" and not _SIZE.match(v):
        raise ValueError(f'expected "host" (for --ipc=host) or a size such as "8g", got {v!r}')
    return v


def _mounts(v: list[str]) -> list[str]:
    for m in v:
        grammar.no_control(m)
        split_mount(m)
    return v


@table
class RunSpec:
    __pydantic_config__ = _STRICT
    gpus: Annotated[str | int, Rule(_gpus)] = "auto"
    ports: Annotated[list[str], Rule(_ports), Rule(_as_list, before=True)] = field(default_factory=list)
    mounts: Annotated[list[str], Rule(_mounts), Rule(_as_list, before=True)] = field(default_factory=list)
    env: Annotated[dict[str, str], Rule(_env)] = field(default_factory=dict)
    shm: Annotated[str, Rule(_shm)] = "host"
    command: Annotated[str | list[str] | None, Rule(_command)] = None
    # NAME (from the environment dlbox runs in), or {NAME = "env" | "env:VAR" | "file:PATH"}:
    # delivered as the file /run/secrets/NAME and exported by the entrypoint, never on argv,
    # in `docker inspect` or in an image (see dlbox.engine.secrets).
    secrets: Annotated[list[str] | dict[str, str], Rule(_secrets)] = field(default_factory=list)


def split_mount(m: str) -> tuple[str, str, str]:
    """"HOST:CONTAINER[:ro|rw]" → (host, container, mode). HOST may be a Windows path (C:\\data)."""
    drive = ""
    if re.match(r"^[A-Za-z]:[\\/]", m):
        drive, m = m[:2], m[2:]
    parts = m.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/") or (
        len(parts) == 3 and parts[2] not in ("ro", "rw")
    ):
        raise ValueError(f'expected "HOST:CONTAINER[:ro]" such as "~/datasets:/datasets:ro", got {drive + m!r}')
    return drive + parts[0], parts[1], parts[2] if len(parts) == 3 else "rw"


def _split_hosts(v: Any) -> Any:
    return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v


def _hosts(v: list[str]) -> list[str]:
    for h in v:
        if not re.match(r"^[A-Za-z0-9.*:/\[\]_-]+$", h):
            raise ValueError(f"{h!r} is not a host name, address or CIDR range")
    return v


def _proxy(v: str) -> str:
    grammar.no_control(v)
    if v not in ("auto", "none") and not re.match(r"^(https?|socks5h?)://[^\s/]+", v):
        raise ValueError('expected "auto", "none" or a URL such as "http://127.0.0.1:7890"')
    return v


def _url(v: str | None) -> str | None:
    return v if v in (None, "auto", "none") else grammar.url(v)


@table
class NetSpec:
    __pydantic_config__ = _STRICT
    proxy: Annotated[str, Rule(_proxy)] = "auto"
    no_proxy: Annotated[list[str], Rule(_hosts), Rule(_split_hosts, before=True)] = field(default_factory=list)
    ca_certs: Annotated[list[str] | Literal["auto", "none"], Rule(_paths)] = "auto"
    apt_mirror: Annotated[str | None, Rule(_url)] = None
    pip_index: Annotated[str, Rule(_url)] = "auto"
    # where uv downloads a uv-managed CPython (python-build-standalone): "auto" = this host's
    # UV_PYTHON_INSTALL_MIRROR, else uv's default host; "none" = uv's default host
    python_mirror: Annotated[str, Rule(_url)] = "auto"


def _name(v: str | None) -> str | None:
    if v is not None and not re.match(r"^[a-z0-9][a-z0-9_.-]*$", v):
        raise ValueError("expected lower-case letters, digits, '.', '_' or '-' (it becomes an image name)")
    return v


@table
class SpecDoc:
    __pydantic_config__ = _STRICT
    name: Annotated[str | None, Rule(_name)] = None
    env: EnvSpec = field(default_factory=EnvSpec)
    run: RunSpec = field(default_factory=RunSpec)
    net: NetSpec = field(default_factory=NetSpec)


SECTIONS: dict[str, type] = {"env": EnvSpec, "run": RunSpec, "net": NetSpec}


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
    data = json.dumps(raw, default=_toml_only, sort_keys=True)
    if _CREDENTIALS.search(data):
        return _check(data, text, file, prefix)
    from dlbox.catalog.cache import validated

    made_from = b"".join(Path(__file__).with_name(n).read_bytes() for n in ("__init__.py", "grammar.py")) + data.encode()
    return validated("spec", lambda: _check(data, text, file, prefix), made_from=made_from, keep=SPECS_KEPT)


def _toml_only(value: Any) -> dict:
    """TOML's dates and times, which JSON has not: an object no field accepts, named in the error."""
    return {_DATETIME: value.isoformat()}


_DATETIME = "TOML date/time"
SPECS_KEPT = 64   # specs checked before, by content: the projects a user works on
_CREDENTIALS = re.compile(r"://[^/\s\"@]*@")


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

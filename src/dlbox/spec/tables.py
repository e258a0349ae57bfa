"""The spec's tables as the user writes them: `[env]`, `[run]`, `[net]` and the top level, each a
frozen dataclass whose fields carry their own rule (`dlbox.checked.Rule`). Read with no coercion
(3.11 is not "3.11", "yes" is not true) and no unknown key; `dlbox.spec.load_spec` does the reading
and turns what is wrong into a file:line error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from dlbox.checked import Rule
from dlbox.spec import grammar

_VERSION = re.compile(r"^\d+(\.\d+){0,2}([a-z0-9.+]*)$")
_PY = re.compile(r"^3\.\d{1,2}$")
_CUDA = re.compile(r"^\d{1,2}\.\d$")
_SIZE = re.compile(r"^\d+(\.\d+)?[bkmg]?b?$", re.IGNORECASE)
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

"""Which CPython dlbox can give a project, and how the image gets it.

The choice: the newest minor inside the project's range that a base OS ships, never its lower
bound (a project saying `requires-python = ">=3.8"` runs on 3.8 *and later*); newer uv-managed
minors only when the range admits nothing a base ships, or when asked. The routes, best first:
- the base OS's own apt (images.json os_python): on CPU a Debian release that ships the minor is
  preferred (bullseye 3.9, bookworm 3.11, trixie 3.13), since it needs nothing beyond Debian's
  mirror and dlbox can bootstrap it where no registry answers (engine/bootstrap.py);
- else a uv-managed CPython (python-build-standalone, images.json uv_python) installed in the image
  by the uv the build already mounts; its download host can be replaced by `[net] python_mirror`.
So every minor some catalogued torch has wheels for, and the pinned uv can install, is providable.

Pure: the catalog and the arguments decide. Every refusal names a setting that works.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from dlbox.catalog import Catalog, load, vkey


@dataclass(frozen=True)
class PythonChoice:
    python: str | None           # "3.12"; None: nothing fits (see `refusal`)
    reason: str
    refusal: str | None = None   # one line that names a setting that works


@dataclass(frozen=True)
class Route:
    """How an image gets Python `python`: `install` is "apt:python3", "apt:python3.11" (the base
    OS's package) or "uv:3.13.18" (that CPython, uv-managed); `image` the CPU base (None when the
    OS was given); `why` the reason `plan` prints."""
    python: str
    install: str
    image: str | None
    os: str
    why: str


def uv_managed(install: str) -> str | None:
    """The exact CPython of a uv route ("uv:3.13.18" -> "3.13.18"), else None."""
    return install.split(":", 1)[1] if install.startswith("uv:") else None


def _uv(cat: Catalog, py: str, image: str | None, os: str, because: str) -> Route | None:
    row = cat.uv_python.row(py) if cat.uv_python else None
    if row is None:
        return None
    return Route(py, f"uv:{row.version}", image, os,
                 f"python {py} uv-managed (python-build-standalone {row.version}, installed by uv in the image): "
                 f"{because} [images.json uv_python {py}]")


def cpu_route(py: str, cat: Catalog | None = None, *, apt: bool = True) -> Route | None:
    """The CPU base and Python route for minor `py`: a base whose apt ships it, else uv on the
    newest bootstrappable Debian. apt=False: the uv route only (the apt base cannot be had).
    None: no route (not a minor dlbox knows)."""
    cat = cat or load()
    row = next((r for r in cat.cpu_bases if r.python == py), None) if apt else None
    if row is not None:
        return Route(py, "apt:python3", row.image, row.os,
                     f"python {py} from {row.image}'s apt [images.json cpu_base_preference {py}]")
    base = cat.uv_python.cpu_base if cat.uv_python else None
    return _uv(cat, py, base.image, base.os, "no base image dlbox has ships it through apt") if base else None


def os_route(py: str, os: str, cat: Catalog | None = None) -> Route | None:
    """The Python route on a given OS (a CUDA image's): its apt package, else uv-managed."""
    cat = cat or load()
    row = next((r for r in cat.os_python if r.os == os and r.python == py), None)
    if row is not None:
        return Route(py, row.install, None, os, f"python {py} from {row.install} on {os} [images.json os_python]")
    return _uv(cat, py, None, os, f"{os}'s apt does not ship it")


def providable(cat: Catalog | None = None, *, gpu_too: bool = True) -> list[str]:
    """Minor versions dlbox can put in an image, oldest first: those a base OS ships or uv installs,
    and some catalogued torch has wheels for. gpu_too: only those a CUDA base can have too, so the
    same dlbox.toml builds on a laptop and on a GPU server (uv-managed ones work on both)."""
    cat = cat or load()
    uv = {r.python for r in cat.uv_python.rows} if cat.uv_python else set()
    cpu = {r.python for r in cat.cpu_bases} | uv
    gpu = {r.python for r in cat.cuda_os} | uv
    torch = {p for p in cpu | gpu if any(vkey(r.python_min) <= vkey(p) <= vkey(r.python_max) for r in cat.torch)}
    return sorted((cpu & gpu if gpu_too else cpu | gpu) & torch, key=vkey)


def _inside(spec: SpecifierSet, minor: str) -> bool:
    """A minor version is inside a range when some release of it is (">=3.8.5" admits 3.8)."""
    return any(spec.contains(Version(f"{minor}.{patch}"), prereleases=False) for patch in range(0, 40))


def outside_range(python: str, range_spec: str) -> bool:
    """True when the minor version `python` has no release inside `range_spec` (bad ranges: False)."""
    try:
        return not _inside(SpecifierSet(range_spec), python)
    except InvalidSpecifier:
        return False


def choose_python(range_spec: str | None, *, where: str = "", torch: str | None = None,
                  prefer: tuple[str, ...] = (), cat: Catalog | None = None) -> PythonChoice:
    """The Python for a project whose declared range is `range_spec` (None: undeclared).

    torch: an exact torch the project pins (its wheels bound the Python). prefer: minors this host
    already has a torch wheel for (its local find-links): taken when inside the range, and said so."""
    cat = cat or load()
    pythons = providable(cat)
    where = f" ({where})" if where else ""
    row = cat.torch_row(torch) if torch else None
    if row is not None:
        pythons = [p for p in pythons if vkey(row.python_min) <= vkey(p) <= vkey(row.python_max)]
    if range_spec is None:
        default = "3.11" if "3.11" in pythons else (pythons[-1] if pythons else None)
        if default is None:
            return _refuse(f"torch {torch} supports Python {row.python_min}-{row.python_max}", cat, torch)
        return PythonChoice(default, f"python {default}: dlbox's default (the project declares no range)")
    try:
        spec = SpecifierSet(range_spec)
    except InvalidSpecifier:
        return PythonChoice(None, "", f"{range_spec!r}{where} is not a version range; set [env] python = \"3.11\"")
    fits = [p for p in pythons if _inside(spec, p)]
    if not fits:
        why = f"the project asks for Python {range_spec}{where}"
        if row is not None:
            why += f" and torch {torch} supports {row.python_min}-{row.python_max}"
        return _refuse(why, cat, torch, spec)
    local = [p for p in fits if p in prefer]
    if local and local[-1] != fits[-1]:
        return PythonChoice(local[-1], f"python {local[-1]}: inside {range_spec}{where}, and this host has a "
                                       f"torch wheel for it (newest inside the range: {fits[-1]}; set "
                                       f"[env] python = \"{fits[-1]}\" to use it)")
    # A minor some base OS ships beats a newer uv-managed one: it needs no download at build time
    # (blocked on many networks), and the newest CPython is the one a project's other wheels
    # (numba, …) reach last. A range that only uv-managed minors fit still gets the newest of them.
    shipped = [p for p in fits if p in _shipped(cat)]
    if shipped and shipped[-1] != fits[-1]:
        newer = [p for p in fits if vkey(p) > vkey(shipped[-1])]
        return PythonChoice(shipped[-1], f"python {shipped[-1]}: the newest inside {range_spec}{where} that a base "
                                         f"OS ships{_how(shipped[-1], cat)} ({', '.join(newer)} also fit, uv-managed: "
                                         f"set [env] python = \"{newer[-1]}\" to use it)")
    return PythonChoice(fits[-1], f"python {fits[-1]}: the newest dlbox provides inside {range_spec}{where}"
                                  f" (provides {', '.join(pythons)}){_how(fits[-1], cat)}")


def _shipped(cat: Catalog) -> set[str]:
    """Minors a CPU or a CUDA base image ships through its apt (no download at build time)."""
    return {r.python for r in cat.cpu_bases} | {r.python for r in cat.cuda_os}


def _how(py: str, cat: Catalog) -> str:
    """How a CPU image gets it, said where the choice is made (a uv route downloads at build)."""
    route = cpu_route(py, cat)
    if route is None or not uv_managed(route.install):
        return f"; on CPU from {route.image}'s apt" if route else ""
    return ("; uv-managed (no Debian release ships it): the build downloads python-build-standalone, "
            "set [net] python_mirror where GitHub is blocked")


def _refuse(why: str, cat: Catalog, torch: str | None, spec: SpecifierSet | None = None) -> PythonChoice:
    pythons = providable(cat)
    has = f"dlbox provides Python {', '.join(pythons)}"
    if torch:
        # the nearest newer torch with wheels for a Python dlbox has: inside the range if possible
        newer = [r for r in sorted(cat.torch, key=lambda r: vkey(r.version)) if vkey(r.version) > vkey(torch)]
        pinned = [r for r in cat.torch if r.version == torch]
        for in_range, rows in ((True, newer), (False, pinned + newer)):
            for r in rows:
                ok = [p for p in pythons if vkey(r.python_min) <= vkey(p) <= vkey(r.python_max)
                      and (not in_range or spec is None or _inside(spec, p))]
                if ok and r.version == torch:
                    return PythonChoice(None, "", f"{why}; {has}: set [env] python = \"{ok[0]}\" (the nearest "
                                                  f"Python torch {torch} has wheels for) and check the project runs on it")
                if ok:
                    return PythonChoice(None, "", f"{why}; {has}: set [env] torch = \"{r.version}\" and python = "
                                                  f"\"{ok[0]}\" (the nearest torch with wheels for a Python dlbox has)")
    upward = spec is not None and spec.contains(Version("3.99.0"))
    nearest = pythons[-1] if upward else pythons[0]
    return PythonChoice(None, "", f"{why}; {has}: set [env] python = \"{nearest}\" (the nearest) and check "
                                  f"the project runs on it")

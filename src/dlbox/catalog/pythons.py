"""Which CPython dlbox can give a project: the newest inside the project's range, never its lower
bound (a project saying `requires-python = ">=3.8"` runs on 3.8 *and later*; 3.8 itself is past
end of life and in no base image dlbox has).

Pure: the catalog (images.json os_python / cpu_base_preference / cuda_os_preference, torch.json
python_min/max) and the arguments decide. Every refusal names a setting that works.
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


def providable(cat: Catalog | None = None, *, gpu_too: bool = True) -> list[str]:
    """Minor versions a base image provides, oldest first. gpu_too: only those a CUDA base has too,
    so the same dlbox.toml builds on a laptop and on a GPU server."""
    cat = cat or load()
    cpu = {r.python for r in cat.cpu_bases}
    gpu = {r.python for r in cat.cuda_os}
    return sorted(cpu & gpu if gpu_too else cpu | gpu, key=vkey)


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
    return PythonChoice(fits[-1], f"python {fits[-1]}: the newest dlbox provides inside {range_spec}{where}"
                                  f" (provides {', '.join(pythons)})")


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

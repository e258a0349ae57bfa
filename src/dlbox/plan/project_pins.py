"""What the project's own pins imply for its lock, beyond the pins themselves.

- `dependency_caps`: an old release pinned by the project may need an upper bound it never declared
  (catalog/dep_caps.json, a source per row): gradio==4.44.1 resolves today to huggingface_hub 1.x,
  which removed what gradio 4 imports.
- `uv_lock_preferences`: a uv project's own uv.lock versions, preferred by the resolver.
"""

from __future__ import annotations

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version


def dependency_caps(deps) -> tuple[list[str], list[str]]:
    """Constraints (and notes) from catalog/dep_caps.json for each dependency whose declared versions
    all fall inside a row's `versions`: an exact pin (gradio==4.44.1, a Space's sdk_version) or an
    upper bound (gradio>=4,<5). A bare `gradio` or `gradio>=4` may resolve to a release that needs no cap."""
    from dlbox.spec.declared.catalog import cap_rows

    caps: list[str] = []
    notes: list[str] = []
    for d in deps:
        for row in cap_rows():
            if row.package != d.name or row.cap in caps or not _inside(d.specifier, row.versions):
                continue
            caps.append(row.cap)
            notes.append(f"{d.origin}: {d.name}{d.specifier} needs {row.cap}: {row.reason} [dep_caps.json]")
    return caps, notes


def _inside(declared: str, versions: str) -> bool:
    """Every version `declared` admits is in `versions` (a pin inside it, or for a `<V` row an upper
    bound at or below V). False when unsure."""
    try:
        row = SpecifierSet(versions)
        specs = list(SpecifierSet(declared))
    except InvalidSpecifier:
        return False
    pin = next((s.version for s in specs if s.operator in ("==", "===", "~=")), None)
    if pin is not None:
        return row.contains(pin.removesuffix(".*").split("+", 1)[0], prereleases=True)
    bounds = [s for s in row]
    if len(bounds) != 1 or bounds[0].operator != "<":
        return False
    limit = Version(bounds[0].version)
    for s in specs:
        try:
            v = Version(s.version)
        except InvalidVersion:
            continue
        if (s.operator == "<" and v <= limit) or (s.operator == "<=" and v < limit):
            return True
    return False


def uv_lock_preferences(declared, *, python: str, skip: set[str]) -> tuple[str, ...]:
    """The versions of the project's uv.lock, as `uv pip compile` preferences (it keeps the pins of an
    existing output file unless they conflict): a uv project gets the versions it locked itself, not
    whatever PyPI has today. Registry packages, the version whose resolution-markers fit the plan's
    Python on linux x86_64 (uv forks by Python); the torch family is the plan's."""
    from packaging.markers import InvalidMarker, Marker

    lock = getattr(declared, "lock", None)
    if lock is None:
        return ()
    env = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}

    def fits(markers: tuple[str, ...]) -> bool:
        try:
            return not markers or any(Marker(m).evaluate(env) for m in markers)
        except InvalidMarker:
            return False

    versions: dict[str, set[str]] = {}
    for p in lock.packages:
        if p.version and p.source.startswith("registry:") and p.name not in skip and fits(p.markers):
            versions.setdefault(p.name, set()).add(p.version)
    return tuple(sorted(f"{n}=={next(iter(v))}" for n, v in versions.items() if len(v) == 1))

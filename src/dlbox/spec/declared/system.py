"""Debian packages the declared Python dependencies need (catalog/system_deps.json), each with
the dependency that asks for it and why."""

from __future__ import annotations

from dlbox.spec.declared.catalog import system_rows
from dlbox.spec.declared.types import Dep, Extension, Origin, SystemNeed


def system_needs(deps: tuple[Dep, ...], extensions: tuple[Extension, ...],
                 torch_compile: tuple[Origin, ...]) -> tuple[SystemNeed, ...]:
    rows = system_rows()
    out: list[SystemNeed] = []

    def add(key: str, because: str, origin: Origin | None) -> None:
        row = rows.get(key)
        if row and row.debian and not any(n.because == because and n.reason == row.reason for n in out):
            out.append(SystemNeed(debian=row.debian, because=because, reason=row.reason, source=row.source,
                                  origin=origin))

    for d in deps:
        if d.group is not None:
            continue
        add(d.name, d.name, d.origin)
        if d.vcs and d.url and d.url.startswith("git+"):
            add("@git", d.name or d.url, d.origin)
    for e in extensions:
        add("@extension", f"extension {e.name}", e.origin)
    if torch_compile:
        add("@torch.compile", "torch.compile", torch_compile[0])
    return tuple(out)

"""Check results shared by `doctor` and `verify`, and the one place that prints them.

Commands return a list of `Check`; `print_checks` shows them as a table for people or as
JSON (`[{"id", "status", "detail", "fix"}]`) for machines.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Iterable, Literal

from rich.console import Console
from rich.table import Table

Status = Literal["ok", "warn", "fail", "skip"]
STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


@dataclass(frozen=True)
class Check:
    id: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def exit_code(checks: Iterable[Check]) -> int:
    """Non-zero when any check failed."""
    return 1 if any(c.status == "fail" for c in checks) else 0


def print_checks(checks: list[Check], *, as_json: bool, console: Console | None = None) -> None:
    if as_json:
        print(json.dumps([c.to_dict() for c in checks], indent=2))
        return
    console = console or Console()
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    table.add_column("fix", overflow="fold")
    for c in checks:
        style = STATUS_STYLE[c.status]
        table.add_row(c.id, f"[{style}]{c.status}[/{style}]", c.detail, c.fix)
    console.print(table)

"""Check results shared by `doctor` and `verify`, and the one place that prints them.

Commands return a list of `Check`; `print_checks` shows them as a table for people or as
JSON (`[{"id", "status", "detail", "fix"}]`) for machines.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Iterable, Literal

if TYPE_CHECKING:
    from rich.console import Console

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
    from rich.table import Table

    console = console or LazyConsole()
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    table.add_column("fix", overflow="fold")
    for c in checks:
        style = STATUS_STYLE[c.status]
        table.add_row(c.id, f"[{style}]{c.status}[/{style}]", c.detail, c.fix)
    console.print(table)


class LazyConsole:
    """A rich Console made when it first prints: `dlbox plan --json` never prints through one,
    and importing rich costs every verb's start-up. Takes rich.console.Console's options."""

    def __init__(self, **options) -> None:
        self._options = options
        self._console = None

    @property
    def console(self):
        """The rich Console itself, for rich APIs that take one (Progress, Live)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str):
        return getattr(self.console, name)


def escape(text: str) -> str:
    """rich.markup.escape, imported when something is printed."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)

"""How long work reports progress, without tying `ship` to a terminal library.

`Meter` is the no-op default; `dlbox.commands.ship` passes one that draws a rich bar.
"""

from __future__ import annotations


class Meter:
    def start(self, description: str, total: int | None) -> None:
        """A new task of `total` bytes (None when unknown) begins."""

    def advance(self, n: int) -> None:
        """`n` more bytes were done."""

    def stop(self) -> None:
        """The task ended (done or failed)."""

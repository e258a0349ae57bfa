"""The torch family table (torch_family.json): which torchvision/torchaudio/torchtext series
belong to each torch release, the CUDA build PyPI serves by default, and the triton it pins.

Kept apart from `dlbox.catalog.load()` so the GPU tables and this one change independently.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from dlbox.catalog import SourcedRow, Table, row
from dlbox.catalog.cache import validated
from dlbox.checked import parse

MEMBERS_WITH_SERIES = ("torchvision", "torchaudio", "torchtext")


@row
class FamilyRow(SourcedRow):
    torch: str                      # minor series: "2.13"
    torchvision: str | None         # series: "0.28"
    torchaudio: str | None
    torchtext: str | None
    measured_torch: str | None      # the patch release the measured fields were read for
    pypi_default_variant: str | None  # "cu130": what `pip install torch==X` gets on Linux x86_64
    triton: str | None
    xformers: str | None            # for measured_torch only (xformers pins torch per patch)
    status: str
    notes: str = ""

    def series(self, member: str) -> str | None:
        return getattr(self, member) if member in MEMBERS_WITH_SERIES else None


@row
class FamilyTable(Table):
    members: dict[str, str]
    rows: tuple[FamilyRow, ...]

    def row(self, torch_version: str) -> FamilyRow | None:
        """The row of the minor series `torch_version` ("2.13.0+cpu" -> "2.13") belongs to."""
        base = torch_version.split("+", 1)[0]
        minor = ".".join(base.split(".")[:2])
        return next((r for r in self.rows if r.torch == minor), None)


@lru_cache(maxsize=1)
def load_family() -> FamilyTable:
    return validated("torch_family", _validate)


def _validate() -> FamilyTable:
    data = json.loads(resources.files("dlbox.catalog").joinpath("torch_family.json").read_text(encoding="utf-8"))
    return parse(FamilyTable, {"members": data["members"], "rows": data["rows"]})

"""`nvidia-smi --query-gpu=… --format=csv` output, with or without its header line, as
(columns, rows) blocks for `host.nvidia_smi.parse_nvidia_smi`. Columns are read by their header
names where there is one, else named by the shape of their values; never by position alone
(dlbox's own query puts the index first, users' pastes put it anywhere)."""

from __future__ import annotations

import re

_FIELD = re.compile(r"^[a-z_]+(\.[a-z_]+)*$")
_KNOWN_FIELDS = {"index", "name", "gpu_name", "driver_version", "compute_cap", "memory.total", "pci.bus_id",
                 "uuid", "gpu_uuid", "compute_mode", "mig.mode.current", "memory.used", "memory.free"}


def csv_blocks(lines: list[str]) -> list[tuple[list[str], list[list[str]]]]:
    """(header columns, rows) for every `--format=csv` block with a header in the text."""
    blocks, i = [], 0
    while i < len(lines):
        cols = [c.strip().split(" [")[0] for c in lines[i].split(",")]
        if cols and all(_FIELD.match(c) for c in cols) and set(cols) & _KNOWN_FIELDS:
            rows, j = [], i + 1
            while j < len(lines) and lines[j].count(",") == len(cols) - 1 and lines[j].strip() \
                    and not lines[j].lstrip().startswith(("$", "#", "|", "+")):
                rows.append([v.strip() for v in lines[j].split(",")])
                j += 1
            blocks.append((cols, rows))
            i = j
        else:
            i += 1
    return blocks


_SHAPES = (  # value shape -> the --query-gpu field it can only be (a header-less CSV names no columns)
    ("driver_version", r"\d{3}\.\d+(\.\d+)*"),
    ("compute_cap", r"\d{1,2}\.\d"),
    ("memory.total", r"\d+ MiB"),
    ("name", r".*[A-Za-z].*"),
)


def _column(value: str, pos: int) -> str | None:
    if re.fullmatch(r"\d+", value):
        # a bare number: the index leads dlbox's own query; later, a small one is an index
        # ("NVIDIA H200, 0, 9.0, …") and a large one a memory.total in MiB (`nounits`)
        return "index" if pos == 0 or int(value) < 64 else "memory.total"
    return next((col for col, shape in _SHAPES if re.fullmatch(shape, value)), None)


def headerless_csv(lines: list[str]) -> list[tuple[list[str], list[list[str]]]]:
    """`--format=csv,noheader` in any column order: each column named by the shape of its values
    (a driver 580.159.04, a capability 9.0, a name with letters, "143771 MiB"). Without a header,
    only values of those shapes make it a query's output: a stray "hello, world" line is not a GPU."""
    rows = [[v.strip() for v in ln.split(",")] for ln in lines]
    if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) < 2:
        return []
    cols = [_column(v, i) for i, v in enumerate(rows[0])]
    for row in rows[1:]:
        if [_column(v, i) for i, v in enumerate(row)] != cols:
            return []
    named = [c for c in cols if c]
    if None in cols or len(set(named)) != len(named) or not {"name", "driver_version"} & set(named):
        return []
    if "name" in named and not re.search(r"NVIDIA|GeForce|Quadro|Tesla|TITAN|RTX|GTX|GRID|\b[A-Z]{1,2}\d{1,4}\b",
                                         rows[0][cols.index("name")]):
        return []
    return [(cols, rows)]

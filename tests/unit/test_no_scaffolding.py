"""The package speaks to its readers, not to the team that wrote it.

Comments cite upstream URLs (or a catalog row's `source`), never documents outside the
repository; no guard treats the package's own modules as optional; no test hook in shipped code.
"""

from __future__ import annotations

import re
from pathlib import Path

from dlbox.host.nvidia_smi import facts_from_options
from dlbox.plan.gpu import TorchRequest, choose

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "dlbox"
FX = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-smi"

OUTSIDE = re.compile(r"compat\.md|\bseed 0\d\d|\btutorial 0\d\d|/work/|STYLE\.md|the lead\b|not landed|"
                     r"not present in this build|DLBOX_SHIP_DROP_AFTER", re.I)


def _code_files():
    return [p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".j2", ".sh")]


def test_code_cites_nothing_outside_the_repository():
    hits = [f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}"
            for p in _code_files() for n, line in enumerate(p.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, "\n".join(hits)


def test_no_import_guard_around_the_package_itself():
    pattern = re.compile(r"except (ModuleNotFoundError|ImportError)")
    hits = [f"{p.relative_to(PACKAGE)}" for p in _code_files() if p.suffix == ".py" and pattern.search(p.read_text())]
    assert not hits, hits


def test_plan_reasons_cite_catalog_rows_not_research_notes():
    # WSL2 531.30 with a cu126 wheel: the slim-base reason once printed "(compat.md D6.1)" to users
    facts = facts_from_options(nvidia_smi_text=(FX / "wsl2-rtx4090-531.30.txt").read_text(), driver=None,
                               compute_caps=None)
    choice = choose(TorchRequest(), facts)
    assert choice.base_image == "debian:bookworm-slim"
    assert not [r for r in choice.reasons if OUTSIDE.search(r)], choice.reasons

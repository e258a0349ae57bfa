"""The CLI builds only the verb group a run names: its table of groups must match the groups."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import typer

from dlbox.cli import GROUPS, groups_for


def _registered(group: str) -> tuple[str, ...]:
    app = typer.Typer()
    importlib.import_module(f"dlbox.commands.{group}").register(app)
    return tuple([c.name or c.callback.__name__ for c in app.registered_commands]
                 + [g.name for g in app.registered_groups])


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_the_table_names_exactly_the_verbs_each_group_registers(group):
    assert _registered(group) == GROUPS[group]


def test_no_verb_is_served_by_two_groups():
    verbs = [v for names in GROUPS.values() for v in names]
    assert len(verbs) == len(set(verbs))


@pytest.mark.parametrize(("args", "expected"), [
    (["plan", "--json", "."], ("core",)),
    (["--help"], tuple(GROUPS)),
    ([], tuple(GROUPS)),
    (["plna"], tuple(GROUPS)),            # a typo: click suggests from every verb
    (["--help", "plan"], tuple(GROUPS)),
    (["cluster", "add", "x"], ("cluster",)),
    (["k8s", "render"], ("k8s",)),
    (["import", "f.tar"], ("ship",)),
])
def test_a_run_builds_only_the_group_of_its_verb(args, expected):
    assert groups_for(args) == expected


def test_top_level_help_still_lists_every_verb():
    out = subprocess.run([sys.executable, "-m", "dlbox.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for verb in ("plan", "deploy", "jupyter", "submit", "k8s", "gc", "doctor", "catalog"):
        assert verb in out


def test_a_typo_is_one_clean_usage_error():
    r = subprocess.run([sys.executable, "-m", "dlbox.cli", "plna"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "plna" in r.stderr


def test_a_lazy_console_is_a_real_console_for_rich():
    import io

    from rich.console import Console
    from rich.progress import Progress

    from dlbox.report import LazyConsole

    buf = io.StringIO()
    lazy = LazyConsole(file=buf, highlight=False)
    assert isinstance(lazy.console, Console)
    lazy.print("[bold]hi[/bold]")
    with Progress(console=lazy.console, transient=True) as bar:
        bar.add_task("x", total=1)
    assert "hi" in buf.getvalue()

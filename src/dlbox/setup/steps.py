"""A setup step: check → show the exact change → apply after confirmation → verify.

A step is plain data (file changes and commands) planned from the host as it is now, so
an already-fixed host plans nothing and the step says so. With a `--root` other than /,
files are edited under that root and commands are shown but never run.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from typing import Callable

import typer
from rich.console import Console
from rich.syntax import Syntax

from dlbox.errors import DlboxError, HostError
from dlbox.host.sysroot import SysRoot
from dlbox.redact import mask_secrets
from dlbox.setup.files import FileChange, apply


@dataclass(frozen=True)
class Command:
    """A command to run as root (sudo is added when not root). `why` is shown with it."""

    argv: tuple[str, ...]
    why: str = ""

    def shown(self) -> str:
        return mask_secrets(" ".join(self.argv))


@dataclass
class Step:
    title: str
    actions: list[FileChange | Command] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verify: Callable[[], list[str]] | None = None  # problems left after applying; [] = fixed


@dataclass(frozen=True)
class Options:
    url: str | None = None
    no_proxy: str | None = None
    apt_mirror: str | None = None
    pip_index: str | None = None
    registry_mirrors: tuple[str, ...] = ()
    dry_run: bool = False
    yes: bool = False


def run_command(cmd: Command) -> None:
    argv = list(cmd.argv) if os.geteuid() == 0 else ["sudo", *cmd.argv]
    if subprocess.run(argv).returncode != 0:
        raise HostError(f"`{cmd.shown()}` failed; stopped here", fix="read the output above, fix it, and run again")


def run_step(step: Step, sysroot: SysRoot, opts: Options, console: Console) -> int:
    """Show, confirm, apply and verify one step. Returns 0 when the host is right afterwards."""
    console.rule(f"[bold]{step.title}")
    for note in step.notes:
        console.print(mask_secrets(note), highlight=False)
    changes = [a for a in step.actions if not isinstance(a, FileChange) or a.changed]
    if not changes:
        console.print("[green]nothing to change[/green]: already set up")
        return 0
    for a in changes:
        if isinstance(a, FileChange):
            console.print(Syntax(a.diff(), "diff", theme="ansi_dark", background_color="default"))
        else:
            console.print(f"$ {a.shown()}" + (f"   # {a.why}" if a.why else ""), highlight=False)
    if opts.dry_run:
        console.print("[yellow]dry run[/yellow]: nothing written, nothing run")
        return 0
    if not opts.yes and not typer.confirm("Apply these changes?", default=False):
        console.print("not applied")
        return 1
    for a in changes:
        if isinstance(a, FileChange):
            backup = apply(a)
            console.print(f"wrote {a.host_path}" + (f" (backup {backup.name})" if backup else ""), highlight=False)
        elif sysroot.live:
            run_command(a)
        else:
            console.print(f"not run (--root {sysroot.root}): {a.shown()}", highlight=False)
    problems = step.verify() if step.verify else []
    if problems:
        for p in problems:
            console.print(f"[red]still wrong:[/red] {mask_secrets(p)}", highlight=False)
        return 1
    console.print("[green]done[/green]")
    return 0


def safe_run_step(plan: Callable[[], Step], title: str, sysroot: SysRoot, opts: Options, console: Console) -> int:
    """Plan and run a step; an expected failure (malformed file, no repo) is reported, not raised."""
    try:
        return run_step(plan(), sysroot, opts, console)
    except DlboxError as exc:
        console.rule(f"[bold]{title}")
        console.print(f"[bold red]error:[/bold red] {mask_secrets(exc.message)}", highlight=False)
        if exc.fix:
            console.print(f"  [bold]fix:[/bold] {mask_secrets(exc.fix)}", highlight=False)
        return 1

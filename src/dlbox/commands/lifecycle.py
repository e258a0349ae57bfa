"""Image lifecycle verbs: `dlbox gc`, and the images part of `dlbox ls`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from dlbox.engine.docker import Docker
from dlbox.report import LazyConsole, escape

if TYPE_CHECKING:
    from rich.table import Table

out = LazyConsole(highlight=False, soft_wrap=True)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def wide() -> Console:
    """Piped output keeps whole rows (rich would cut a table to 80 columns)."""
    return out if out.is_terminal else Console(highlight=False, soft_wrap=True, width=200)


def images_table(docker: Docker) -> tuple[Table, str]:
    """Each project's images with their unique bytes (theirs alone) and shared bytes (layers another
    image also has: the base, Python and torch layers of projects with the same plan inputs)."""
    from rich.table import Table

    from dlbox.engine.lifecycle import dlbox_rows, image_rows

    rows = sorted(dlbox_rows(image_rows(docker)), key=lambda r: (r.project, r.created), reverse=False)
    table = Table(box=None)
    for col in ("repository", "tag", "created", "size", "unique", "shared", "containers"):
        table.add_column(col, justify="right" if col in ("size", "unique", "shared", "containers") else "left",
                         no_wrap=True)
    for r in rows:
        table.add_row(escape(r.repo), escape(r.tag), r.created[5:16], _mb(r.size), _mb(r.unique), _mb(r.shared),
                      str(r.containers))
    unique = sum(r.unique for r in rows)
    shared = max((r.shared for r in rows), default=0)
    summary = (f"{len(rows)} dlbox image(s): {_mb(unique)} unique to one image; shared layers up to "
               f"{_mb(shared)} are stored once")
    return table, summary


def gc(
    keep: int = typer.Option(2, "--keep", min=0, help="previous environment images to keep per project"),
    cache_budget: str = typer.Option("20GB", "--cache-budget", help="BuildKit cache to keep (docker size, e.g. 10GB)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only say what would be removed"),
    project: list[str] = typer.Option([], "--project", help="only this project's images (repeat); default all"),
):
    """Remove old project images (keeping the current one, --keep previous ones, and any a container
    uses) and prune BuildKit's cache down to --cache-budget; say what was freed."""
    from dlbox.engine.lifecycle import gc as do_gc

    docker = Docker()
    docker.ping()
    r = do_gc(docker, keep=keep, cache_budget=cache_budget, dry_run=dry_run, projects=tuple(project))
    verb = "would remove" if dry_run else "removed"
    for ref in r.removed:
        out.print(f"{verb} {escape(ref)}")
    for ref in r.kept_in_use:
        out.print(f"[dim]kept {escape(ref)}: a container or another repository uses it[/dim]")
    for e in r.errors:
        out.print(f"[yellow]could not remove {escape(e)}[/yellow]")
    what = "would free" if dry_run else "freed"
    out.print(f"{what} {_mb(r.images_freed)} of images ({len(r.removed)} removed)"
              + ("" if dry_run else f" and {_mb(r.cache_freed)} of BuildKit cache (budget {cache_budget})"))


def register(app: typer.Typer) -> None:
    app.command()(gc)

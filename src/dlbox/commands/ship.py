"""Ship verbs: export, import, push, deploy, snapshot. A thin map onto `dlbox.ship`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from dlbox.engine.docker import Docker
from dlbox.errors import EngineError
from dlbox.report import LazyConsole
from dlbox.ship.progress import Meter

err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)
out = LazyConsole(highlight=False, soft_wrap=True)
PathArg = typer.Argument(Path("."), help="project directory", show_default=False)
ImageOpt = typer.Option(None, "--image", help="ship this image instead of the project's baked one")


def _say(msg: str) -> None:
    err.print(f"[dim]dlbox:[/dim] {msg}")


class RichMeter(Meter):
    """A byte progress bar with throughput on stderr."""

    def __init__(self) -> None:
        self.progress = None   # a rich Progress while a transfer runs
        self.task = None

    def start(self, description: str, total: int | None) -> None:
        # imported here: rich.progress costs ~50 ms at start-up, which every verb (plan too) would pay
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeElapsedColumn(), console=err.console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task(description, total=total)

    def advance(self, n: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, n)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _image(path: Path, image: str | None) -> tuple[str, str]:
    """(image ref, project name) — `--image`, else the project's baked image."""
    if image:
        return image, image.split("/")[-1].split(":")[0].split("@")[0]
    from dlbox import workflow
    from dlbox.plan.layout import image_name

    p = workflow.load_project(path, docker=Docker(), say=_say)
    ref = f"{image_name(p.plan)}:baked"
    if not Docker().image_exists(ref):
        raise EngineError(f"The project has no baked image {ref} yet.", fix=f"dlbox build --bake {path}")
    return ref, p.plan.project


def export(path: Path = PathArg, output: Optional[Path] = typer.Option(None, "-o", "--output", help="archive file"),
           image: Optional[str] = ImageOpt):
    """Save the baked image as NAME.tar.zst (zstd, all cores) with a NAME.tar.zst.sha256 sidecar."""
    from dlbox.ship.archive import export_image

    ref, name = _image(path, image)
    target = output or Path(f"{name}.tar.zst")
    r = export_image(Docker(), ref, target, meter=RichMeter(), say=_say)
    out.print(f"{r.file}  {_mb(r.file_bytes)} (image {_mb(r.image_bytes)}) in {r.seconds:.1f} s")
    out.print(f"sha256 {r.sha256}  → {r.file}.sha256")


def import_(file: Path = typer.Argument(..., help="archive written by dlbox export")):
    """Check FILE against FILE.sha256, then load it into the engine."""
    from dlbox.ship.archive import import_archive

    r = import_archive(Docker(), file, meter=RichMeter())
    for ref in r.loaded:
        out.print(f"loaded {ref}")
    out.print(f"in {r.seconds:.1f} s")


def push(path: Path = PathArg,
         registry: str = typer.Option(..., "--registry", help="[USER:PASSWORD@]HOST[:PORT][/NAMESPACE], e.g. 127.0.0.1:5000/team (the password is never printed or kept)"),
         image: Optional[str] = ImageOpt):
    """Tag the image for a registry and push it (plain HTTP is fine on 127.0.0.1)."""
    from dlbox.ship.push import push as do_push

    ref, _ = _image(path, image)
    status = err.status(f"pushing {ref}")
    status.start()
    try:
        r = do_push(Docker(), ref, registry, on_line=lambda line: status.update(f"pushing {ref}: {line[:100]}"))
    finally:
        status.stop()
    for note in r.notes:
        _say(note)
    out.print(f"pushed {r.remote_ref}" + (f"@{r.digest}" if r.digest else "") + f" in {r.seconds:.1f} s")


def deploy(args: list[str] = typer.Argument(..., metavar="[PATH] USER@HOST[:PORT]",
                                             help="project directory (default .) and the server"),
           image: Optional[str] = ImageOpt,
           as_json: bool = typer.Option(False, "--json", help="print the result as JSON")):
    """Put the image on a server's Docker over SSH, sending only the layers it lacks (resumable)."""
    from dlbox.ship.deploy import deploy as do_deploy

    if len(args) > 2:
        raise typer.BadParameter("give at most a project directory and one server", param_hint="[PATH] USER@HOST")
    path, target = (Path(args[0]), args[1]) if len(args) == 2 else (Path("."), args[0])
    ref, _ = _image(path, image)
    r = do_deploy(Docker(), ref, target, say=_say, meter=RichMeter())
    if as_json:
        out.print(json.dumps(r.to_dict(), indent=2))
        return
    if r.already_there:
        out.print(f"{ref} was already on {r.target} (tagged, nothing sent) in {r.seconds:.1f} s")
        return
    rate = r.bytes_sent / r.seconds / 1e6 if r.seconds else 0.0
    wire = (f" as {_mb(r.bytes_sent)} {r.codec}" if r.codec != "none" else "")
    out.print(f"{ref} on {r.target}: sent {_mb(r.raw_bytes or r.bytes_sent)} of {_mb(r.image_bytes)}{wire} "
              f"({r.layers_sent} of {r.layers_total} layers; {r.layers_present} already there"
              + (f", {_mb(r.resumed_bytes)} from an interrupted deploy" if r.resumed_bytes else "")
              + f") in {r.seconds:.1f} s, {rate:.1f} MB/s on the wire")


def snapshot(path: Path = PathArg, tag: Optional[str] = typer.Option(None, "--tag", help="image name:tag to write")):
    """Save the project's running container as an image (docker commit), labelled with its origin."""
    from datetime import datetime, timezone

    from dlbox import workflow
    from dlbox.plan.layout import container_name
    from dlbox.ship.snapshot import WARNING, default_tag
    from dlbox.ship.snapshot import snapshot as do_snapshot

    p = workflow.load_project(path, docker=Docker(), say=_say)
    err.print(f"[yellow]warning:[/yellow] {WARNING}")
    r = do_snapshot(Docker(), container_name(p.plan), tag or default_tag(p.plan.project, datetime.now(timezone.utc)))
    out.print(f"{r.tag}  ({r.id[:19]}) from container {r.container}")


def register(app: typer.Typer) -> None:
    app.command()(export)
    app.command("import")(import_)
    app.command()(push)
    app.command()(deploy)
    app.command()(snapshot)

"""Verbs for notebooks, editors and web apps: jupyter, devcontainer, compose, serve."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbox import workflow
from dlbox.engine.docker import Docker
from dlbox.report import LazyConsole

err = LazyConsole(stderr=True, highlight=False)
out = LazyConsole(highlight=False)

PathArg = typer.Argument(Path("."), help="project directory", show_default=False)


def _say(msg: str) -> None:
    err.print(f"[dim]dlbox:[/dim] {msg}")


def _project(path: Path, *, docker: bool = True) -> workflow.Project:
    p = workflow.load_project(path, docker=Docker() if docker else None, check_images=docker, say=_say)
    for w in p.plan.warnings:
        err.print(f"[yellow]warning:[/yellow] {w}")
    return p


def _public_note(public: bool, port: int) -> None:
    if public:
        _say(f"published on every address of this machine (port {port}); anyone who can reach it still needs the token")


def jupyter(
    path: Path = PathArg,
    port: int = typer.Option(8888, "--port", help="host port (on 127.0.0.1 unless --public)"),
    detach: bool = typer.Option(False, "--detach", "-d", help="start it and return; stop it with `dlbox down`"),
    public: bool = typer.Option(False, "--public", help="publish on all addresses, not only 127.0.0.1"),
    timeout: float = typer.Option(180, "--timeout", help="seconds to wait for the server to answer"),
    recreate: bool = typer.Option(False, "--recreate", help="replace a running server started with other options"),
):
    """JupyterLab in the project's environment, with a token, on 127.0.0.1."""
    from dlbox.apps.jupyter import start_jupyter, stop_jupyter
    from dlbox.engine.run import logs_argv

    p = _project(path)
    server = start_jupyter(p, port=port, public=public, timeout=timeout, recreate=recreate, say=_say)
    if not server.started:
        _say(f"Jupyter already runs in {server.name}")
    else:
        _say(f"Jupyter answered in {server.seconds:.1f} s")
    _public_note(server.public, server.port)
    out.print(server.url)
    if detach or not server.started:
        if server.started:
            _say("stop it with: dlbox down")
        return
    _say("Ctrl-C stops it")
    try:
        p.docker.popen(logs_argv(server.name, tail="0", follow=True)).wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_jupyter(p)


def serve(
    path: Path = PathArg,
    public: bool = typer.Option(False, "--public", help="publish ports on all addresses, not only 127.0.0.1"),
    timeout: float = typer.Option(300, "--timeout", help="seconds to wait for the port to answer"),
    recreate: bool = typer.Option(False, "--recreate", help="replace a running container started with other options"),
):
    """Start the project's [run] command detached, wait until its port answers, print the URL."""
    from dlbox.apps.web import start_web

    p = _project(path)
    confirm = (lambda q: typer.confirm(q, default=False, err=True)) if workflow._on_terminal() else None
    app = start_web(p, public=public, timeout=timeout, recreate=recreate, confirm=confirm, say=_say)
    _say(f"{app.name} answered in {app.seconds:.1f} s; stop it with: dlbox down")
    _public_note(app.public, p.plan.run.ports[0].host_port)
    for url in app.urls:
        out.print(url)


def devcontainer(
    path: Path = PathArg,
    image: bool = typer.Option(False, "--image", help="use the dlbox-built image (built now if needed) "
                                                      "instead of building .dlbox/Dockerfile"),
):
    """Write .devcontainer/devcontainer.json (merged into an existing one, which is backed up)."""
    from dlbox.apps.files import write_devcontainer
    from dlbox.workflow import containers

    p = _project(path)
    tag = containers.ensure_image(p, say=_say).image if image else None
    _report(write_devcontainer(p, image=tag))


def compose(
    path: Path = PathArg,
    force: bool = typer.Option(False, "--force", help="replace an existing compose.yaml (a backup is kept)"),
):
    """Write compose.yaml for the environment (GPU reservations, ipc/shm, ulimits, ports, mounts)."""
    from dlbox.apps.files import write_compose

    p = _project(path)
    _report(write_compose(p, force=force))


def _report(w) -> None:
    if w.action == "unchanged":
        out.print(f"{w.path} is up to date")
        return
    out.print(f"{w.action} {w.path}")
    if w.backup:
        out.print(f"  the previous file is kept as {w.backup}")


def register(app: typer.Typer) -> None:
    app.command()(jupyter)
    app.command()(serve)
    app.command()(devcontainer)
    app.command()(compose)

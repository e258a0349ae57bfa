"""Core verbs: init, plan, lock, render, build, base bootstrap; and the helpers every verb that
loads a project shares (its image built here or found on a server)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from dlbox import workflow
from dlbox.engine.docker import Docker
from dlbox.host.nvidia_smi import compute_capability, driver_version
from dlbox.plan.model import FLAVORS
from dlbox.report import LazyConsole, escape

err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)
out = LazyConsole(highlight=False, soft_wrap=True)

PathArg = typer.Argument(Path("."), help="project directory", show_default=False)


def _param(check, value):
    """A click parameter checked by CHECK (ValueError → a usage error naming the option)."""
    if value is None:
        return None
    try:
        return check(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _flavor(value: str) -> str:
    if value not in FLAVORS:
        raise ValueError(f"{value!r} is not one of {', '.join(FLAVORS)}")
    return value


def _smi_text(path: Path | None) -> str | None:
    """A saved nvidia-smi output (`--nvidia-smi FILE`): text, or one clear error."""
    if path is None:
        return None
    from dlbox.spec.textfile import read_user_text

    text = read_user_text(path, "a saved nvidia-smi output")
    if not text.strip():
        raise typer.BadParameter(f"{path} is empty: save what `nvidia-smi` prints on the GPU machine into it",
                                 param_hint="--nvidia-smi")
    from dlbox.host.nvidia_smi import parse_nvidia_smi

    facts = parse_nvidia_smi(text)
    if facts.driver_version is None and not facts.gpus and facts.problem is None:
        from dlbox.errors import DlboxError

        raise DlboxError(f"--nvidia-smi {path}: dlbox finds no driver version, no GPU and no known nvidia-smi "
                         "error in it", fix="save the whole output of plain `nvidia-smi` (or `nvidia-smi -q`) "
                         "from the GPU machine into the file")
    return text


def _say(msg: str) -> None:
    err.print(f"[dim]dlbox:[/dim] {escape(msg)}")


def _warn(plan) -> None:
    for w in plan.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(w)}")


def _project(path: Path, *, check_images: bool = False) -> workflow.Project:
    return workflow.load_project(path, docker=Docker(), check_images=check_images, say=_say)


def _built(p: workflow.Project, *, force: bool = False, quiet: bool = False) -> str:
    from dlbox.workflow import containers

    result = containers.ensure_image(p, force=force, quiet=quiet, say=_say)
    if result.built:
        _say(f"built {result.image} in {result.seconds:.1f} s")
    return result.image


def _ready(path: Path, server: str | None) -> tuple[workflow.Project, str]:
    """The project and its image: built here, or the one `dlbox deploy` put on SERVER."""
    from dlbox.workflow import containers

    if server:
        p = workflow.load_server_project(path, server)
        _warn(p.plan)
        return p, containers.server_image(p)
    p = _project(path, check_images=True)
    _warn(p.plan)
    return p, _built(p)


def init(path: Path = PathArg, force: bool = typer.Option(False, "--force", help="replace an existing dlbox.toml")):
    """Write dlbox.toml, detected from requirements.txt / environment.yml / pyproject.toml."""
    from dlbox.host.netconf import observe_net
    from dlbox.host.wheels import scan_local_wheels
    from dlbox.spec.detect import init as do_init

    wheels = scan_local_wheels(list(observe_net().find_links))
    local = tuple(sorted({f"3.{t[3:]}" for w in wheels if w.name == "torch" for t in w.python_tags
                          if t.startswith("cp3") and t[3:].isdigit()}))
    target, detected = do_init(path.resolve(), force=force, prefer_python=local)
    from dlbox.engine.paths import give_to_owner

    give_to_owner(target.parent, target)
    out.print(f"wrote {target}")
    for note in detected.notes:
        out.print(f"  [dim]{escape(note)}[/dim]")
    for problem in detected.problems:
        err.print(f"[yellow]check:[/yellow] {escape(problem)}")
    out.print("next: [bold]dlbox plan[/bold] to see the image it resolves to, [bold]dlbox up[/bold] to start it")


NvidiaSmiOpt = typer.Option(None, "--nvidia-smi", help="plan for the GPU host whose saved nvidia-smi output this is")
DriverOpt = typer.Option(None, "--driver", help="plan for this NVIDIA driver version (what-if)")
CapOpt = typer.Option(None, "--compute-cap", help="a GPU's compute capability, e.g. 8.6 (repeat)")
TargetOpt = typer.Option(None, "--host", help="user@host[:port]: plan for that server's driver and GPUs (over SSH)")


def _planned(path: Path, *, nvidia_smi: Optional[Path], driver: Optional[str], compute_cap: Optional[list[str]],
             server: Optional[str], docker: Docker | None = None, check_images: bool = False) -> workflow.Project:
    """The project planned for this host, or for the GPU host the what-if options describe."""
    from dlbox.spec import load_spec

    spec = load_spec(path)
    host = workflow.observe_server(server)[0] if server else workflow.observe_for(spec, docker)
    if server:
        host = replace(host, server=None)  # its facts, built here
    if nvidia_smi is not None and not nvidia_smi.is_file():
        raise typer.BadParameter(f"{nvidia_smi}: no such file", param_hint="--nvidia-smi")
    from dlbox.host.what_if import what_if

    host = what_if(host, nvidia_smi_text=_smi_text(nvidia_smi),
                   driver=driver, compute_caps=compute_cap)
    return workflow.load_project(path, docker=docker, host=host, check_images=check_images, say=_say)


def lock(
    path: Path = PathArg,
    force: bool = typer.Option(False, "--force", help="resolve again even when the lock is up to date"),
    nvidia_smi: Optional[Path] = NvidiaSmiOpt, driver: Optional[str] = DriverOpt,
    compute_cap: Optional[list[str]] = CapOpt, server: Optional[str] = TargetOpt,
):
    """Resolve the whole dependency set for the plan's variant into dlbox-<variant>.lock (commit it)."""
    p = _planned(path, nvidia_smi=nvidia_smi, driver=driver, compute_cap=compute_cap, server=server)
    _warn(p.plan)
    result = workflow.ensure_lock(p, force=force, say=_say)
    t = p.plan.choice.torch
    torch = next((v for k, v in result.locked.pins.items() if k == "torch"), None)
    state = "written" if result.wrote else "up to date"
    out.print(f"{result.path} {state}: {len(result.locked.pins)} packages"
              + (f", {torch} ({result.locked.source})" if torch else "") + f", {result.seconds:.1f} s")
    if t is not None and not result.wrote:
        out.print("[dim]inputs unchanged since it was written; --force resolves again[/dim]")


def render(
    path: Path = PathArg,
    nvidia_smi: Optional[Path] = NvidiaSmiOpt, driver: Optional[str] = DriverOpt,
    compute_cap: Optional[list[str]] = CapOpt, server: Optional[str] = TargetOpt,
):
    """Write .dlbox/Dockerfile (+ its .dockerignore) that plain `docker build` can build."""
    from dlbox.engine.stage import stage_project

    p = _planned(path, nvidia_smi=nvidia_smi, driver=driver, compute_cap=compute_cap, server=server)
    _warn(p.plan)
    workflow.ensure_lock(p, say=_say)
    docker = Docker()
    try:
        docker.ping()
    except Exception:  # noqa: BLE001 — no engine here: the Dockerfile is still written
        docker = None
    staged = stage_project(p.plan, docker=docker)
    out.print(f"wrote {staged.dockerfile} and {staged.dockerfile}.dockerignore")
    if docker is None:
        out.print(f"it mounts the image {staged.tools} (uv and local wheels): run dlbox render again where Docker runs")
    out.print(f"build it without dlbox: cd {p.spec.project_dir} && DOCKER_BUILDKIT=1 docker build -f .dlbox/Dockerfile .")


def build(
    path: Path = PathArg,
    bake: bool = typer.Option(False, "--bake", help="also copy the project's code in: an image to ship"),
    force: bool = typer.Option(False, "--force", help="rebuild even when nothing changed"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    nvidia_smi: Optional[Path] = NvidiaSmiOpt, driver: Optional[str] = DriverOpt,
    compute_cap: Optional[list[str]] = CapOpt, server: Optional[str] = TargetOpt,
):
    """Build the project's image (only when an input changed); relocks first when the lock is stale.
    With --driver/--compute-cap/--nvidia-smi/--host: the image that GPU host will run, built here."""
    from dlbox.workflow import containers

    p = _planned(path, nvidia_smi=nvidia_smi, driver=driver, compute_cap=compute_cap, server=server,
                 docker=Docker(), check_images=True)
    _warn(p.plan)
    image = _built(p, force=force, quiet=quiet)
    if bake:
        baked = containers.bake_image(p, image, quiet=quiet)
        image = baked.image
        err.print(f"[dim]{escape(baked.sent)}[/dim]")
        for w in baked.warnings:
            err.print(f"[yellow]warning:[/yellow] {escape(w)}")
    out.print(image)


def plan(
    path: Path = PathArg,
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
    nvidia_smi: Optional[Path] = typer.Option(None, "--nvidia-smi", help="read a saved nvidia-smi output"),
    driver: Optional[str] = typer.Option(None, "--driver", help="plan for this driver version",
                                         callback=lambda v: _param(driver_version, v)),
    compute_cap: Optional[list[str]] = typer.Option(None, "--compute-cap", help="a GPU's compute capability (repeat)",
                                                    callback=lambda v: v and [_param(compute_capability, c) for c in v]),
    torch: Optional[str] = typer.Option(None, "--torch"),
    cuda: Optional[str] = typer.Option(None, "--cuda"),
    flavor: Optional[str] = typer.Option(None, "--flavor", help="runtime | devel (adds nvcc)",
                                         callback=lambda v: _param(_flavor, v)),
    no_gpu: bool = typer.Option(False, "--no-gpu"),
    host_check: bool = typer.Option(False, "--engine", help="also ask the Docker engine (runtime, images)"),
    server: Optional[str] = typer.Option(None, "--host", help="user@host[:port]: on that server over SSH (after `dlbox deploy`)"),
    root: Optional[Path] = typer.Option(None, "--root", metavar="DIR",
                                        help="plan for the host saved under DIR (as `doctor --root DIR` reads it)"),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="plan for a Slurm cluster's nodes (lowest driver, every GPU)"),
):
    """Show the decision (base image, CUDA, torch, run flags) and the reason for each part."""
    from dlbox.host.what_if import what_if
    from dlbox.plan import resolve
    from dlbox.plan.model import Overrides
    from dlbox.spec import load_spec

    spec = load_spec(path, required=False)
    host = workflow.plan_host(spec, server=server, root=root, engine=host_check)
    if cluster:
        from dlbox.cluster import config
        from dlbox.cluster.probe import cached, for_cluster

        host = for_cluster(host, cached(config.get(cluster)))
    host = what_if(host, nvidia_smi_text=_smi_text(nvidia_smi), driver=driver,
                   compute_caps=compute_cap)
    from dlbox.spec.declared import read_declared

    declared = read_declared(spec.project_dir, requirements=spec.env.requirements)
    result = resolve(spec, host, overrides=Overrides(torch=torch, cuda=cuda, flavor=flavor, no_gpu=no_gpu),
                     declared=declared)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    from dlbox.render.dockerfile import plan_lines

    for line in plan_lines(result):
        style = "yellow" if line.startswith("!") else ("dim" if line.startswith("-") else "bold")
        out.print(f"[{style}]{escape(line)}[/{style}]")


def base_bootstrap(ref: str = typer.Argument("debian:bookworm-slim", help="debian:SUITE[-slim]"),
                   mirror: Optional[str] = typer.Option(None, "--mirror", help="Debian mirror URL")):
    """Make a Debian base image from packages, without any registry."""
    from dlbox.engine.bootstrap import bootstrap

    docker = Docker()
    docker.ping()
    bootstrap(docker, ref, mirror=mirror, say=_say)
    out.print(ref)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(plan)
    app.command()(lock)
    app.command()(render)
    app.command()(build)
    base = typer.Typer(help="Base images without a registry.", no_args_is_help=True)
    base.command(name="bootstrap")(base_bootstrap)
    app.add_typer(base, name="base")

"""The project's container: up, shell, exec, run, verify, down, ls, logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from dlbox import workflow
from dlbox.commands.core import PathArg, _built, _project, _ready, _say, out
from dlbox.engine.docker import Docker
from dlbox.workflow import containers


def up(
    path: Path = PathArg,
    detach: bool = typer.Option(False, "--detach", "-d", help="start it and return, do not open a shell"),
    public: bool = typer.Option(False, "--public", help="publish ports on all addresses, not only 127.0.0.1"),
    server: Optional[str] = typer.Option(None, "--host", help="user@host[:port]: on that server over SSH (after `dlbox deploy`)"),
    recreate: bool = typer.Option(False, "--recreate", help="replace a running container started with other options"),
):
    """Build if needed, start the project's container, and open a shell in /workspace."""
    p, image = _ready(path, server)
    confirm = _confirm if workflow._on_terminal() else None
    if detach and p.plan.run.command and p.plan.run.ports and not server:
        # a web app: wait until its port answers (or show why the container stopped)
        from dlbox.apps.web import start_web

        app = start_web(p, public=public, image=image, recreate=recreate, confirm=confirm, say=_say)
        _print_bound(p)
        for url in app.urls:
            out.print(url)
        return
    name, created = containers.ensure_container(p, image, public=public, recreate=recreate, confirm=confirm, say=_say)
    _say(("started " if created else "running ") + name)
    _print_bound(p)
    if detach:
        return
    raise typer.Exit(containers.exec_in(p, ("bash",)))


def _confirm(question: str) -> bool:
    return typer.confirm(question, default=False, err=True)


def _print_bound(p: workflow.Project) -> None:
    """What the container really binds (read back from the engine), not what was asked for."""
    for b in containers.bound_addresses(p):
        scope = "all addresses" if b["ip"] in ("0.0.0.0", "::", "") else b["ip"]
        _say(f"port {b['container']} → http://{b['ip']}:{b['port']}/  (published on {scope})")


def shell(path: Path = PathArg):
    """Open a shell in the running container (start it first if needed)."""
    up(path, detach=False, public=False, server=None, recreate=False)


def exec_(ctx: typer.Context, path: Path = typer.Option(Path("."), "--path", "-C", help="project directory")):
    """Run a command in the running container:  dlbox exec -- nvidia-smi"""
    p = _project(path)
    raise typer.Exit(containers.exec_in(p, tuple(ctx.args) or ("bash",)))


def run(
    ctx: typer.Context,
    path: Path = typer.Option(Path("."), "--path", "-C", help="project directory"),
    public: bool = typer.Option(False, "--public"),
    server: Optional[str] = typer.Option(None, "--host", help="user@host[:port]: on that server over SSH (after `dlbox deploy`)"),
):
    """Run a one-off command in a fresh container:  dlbox run -- python train.py"""
    p, image = _ready(path, server)
    raise typer.Exit(containers.run_once(p, image, tuple(ctx.args), public=public))


def down(path: Path = PathArg,
    server: Optional[str] = typer.Option(None, "--host", help="user@host[:port]: on that server over SSH (after `dlbox deploy`)"),
):
    """Stop and remove the project's container."""
    p = workflow.load_server_project(path, server) if server else _project(path)
    removed = containers.down(p)
    _say("removed " + ", ".join(removed) if removed else "nothing was running")


def ls(images: bool = typer.Option(True, "--images/--no-images", help="also list each project's images and their disk use")):
    """List dlbox containers on this engine, and each project's images with unique and shared bytes."""
    from rich.table import Table

    from dlbox.engine.run import list_containers

    rows = list_containers(Docker())
    table = Table(box=None)
    for col in ("name", "image", "status", "ports"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["image"], r["status"], r["ports"])
    out.print(table)
    if images:
        from dlbox.commands.lifecycle import images_table, wide

        table, summary = images_table(Docker())
        wide().print(table)
        out.print(summary)


def logs(path: Path = PathArg, follow: bool = typer.Option(False, "--follow", "-f"),
         tail: str = typer.Option("200", "--tail")):
    """Show the project's container output (or a cluster job's: dlbox logs JOB)."""
    from dlbox.engine.run import logs_argv
    from dlbox.plan.layout import container_name

    if not path.exists() and str(path).isdigit():   # a Slurm job ID, not a project directory
        from dlbox.commands.cluster import job_logs

        raise typer.Exit(job_logs(str(path), follow=follow, tail=int(tail) if tail.isdigit() else None))

    p = _project(path)
    raise typer.Exit(Docker().popen(logs_argv(container_name(p.plan), tail=tail, follow=follow)).wait())


def verify(
    path: Path = PathArg,
    as_json: bool = typer.Option(False, "--json", help="a list of {id, status, detail}"),
    require_gpu: bool = typer.Option(False, "--require-gpu", help="a missing GPU is a failure, not a skip"),
    perf: bool = typer.Option(False, "--perf", help="also measure: matmul TFLOP/s against the datasheet, "
                              "host->device GB/s pinned vs pageable, NCCL all-reduce, DataLoader through /dev/shm"),
    here: bool = typer.Option(False, "--here", help="run the probes with a Python on this machine, "
                              "no container (a GPU host without Docker)"),
    python: str = typer.Option("python3", "--python", help="the interpreter --here uses (it needs torch)"),
    raw: Optional[Path] = typer.Option(None, "--raw", metavar="DIR", help="with --here: keep the raw observations in DIR"),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="run the preflight on N nodes of this Slurm cluster"),
    nodes: int = typer.Option(1, "--nodes", "-N", help="with --cluster: how many nodes"),
    gpus_per_node: int = typer.Option(0, "--gpus-per-node", "-G", help="with --cluster: GPUs each node must show"),
):
    """Prove the environment works inside its container: GPU, torch, nvcc, shm, ulimits (--perf: and how fast).
    With --cluster: on every node (GPUs, CUDA, matmul, shm, memlock, cross-node all-reduce)."""
    from dlbox.report import exit_code, print_checks
    from dlbox.workflow import verify as probes

    if cluster:
        from dlbox.commands.cluster import verify_cluster

        raise typer.Exit(verify_cluster(cluster, path, nodes, gpus_per_node, as_json=as_json))

    if here:
        checks = probes.verify_here(python, require_gpu=require_gpu, perf=perf, raw_dir=raw)
    else:
        p = _project(path, check_images=True)
        image = _built(p, quiet=as_json)
        checks = probes.verify(p, image, require_gpu=require_gpu, perf=perf)
    if as_json:
        print(json.dumps([{k: v for k, v in c.to_dict().items() if k != "fix" or v} for c in checks], indent=2))
    else:
        print_checks(checks, as_json=False, console=out)
    raise typer.Exit(exit_code(checks))


def register(app: typer.Typer) -> None:
    passthrough = {"allow_extra_args": True, "ignore_unknown_options": True}
    app.command()(up)
    app.command()(shell)
    app.command(name="exec", context_settings=passthrough)(exec_)
    app.command(context_settings=passthrough)(run)
    app.command()(verify)
    app.command()(down)
    app.command()(ls)
    app.command()(logs)

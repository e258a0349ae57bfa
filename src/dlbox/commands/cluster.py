"""Cluster verbs: cluster add/list/remove/probe/push/logs, submit, jobs, cancel (Slurm)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from dlbox.report import LazyConsole, escape

err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)
out = LazyConsole(highlight=False, soft_wrap=True)
group = typer.Typer(help="Slurm clusters: add one, see what its nodes have, ship images to them.", no_args_is_help=True)
PathOpt = typer.Option(Path("."), "--path", "-C", help="project directory")
ClusterOpt = typer.Option(None, "--cluster", "-c", help="cluster name (dlbox cluster add)")


def _say(msg: str) -> None:
    err.print(f"[dim]dlbox:[/dim] {escape(msg)}")


def add(name: str = typer.Argument(..., help="a short name for the cluster"),
        slurm: str = typer.Option(..., "--slurm", help="user@login-node[:port], or 'local' when sbatch is here"),
        partition: Optional[str] = typer.Option(None, "--partition", "-p"),
        shared_dir: str = typer.Option("$HOME/.dlbox", "--shared-dir", help="a directory every node mounts"),
        runtime: str = typer.Option("auto", "--runtime", help="auto|pyxis|apptainer|docker|podman|oci"),
        registry: Optional[str] = typer.Option(None, "--registry", help="HOST[:PORT] the nodes pull from"),
        no_probe: bool = typer.Option(False, "--no-probe", help="save only; do not ask the cluster now")):
    """Add (or update) a Slurm cluster, then probe its nodes."""
    from dlbox.cluster import config

    c = config.Cluster(name=name, login=slurm, partition=partition, shared_dir=shared_dir, runtime=runtime,
                       registry=registry).validate()
    path = config.save(c)
    _say(f"saved {name} in {path}")
    if not no_probe:
        probe(name, as_json=False)


def list_():
    """The clusters added on this machine."""
    from rich.table import Table

    from dlbox.cluster import config

    table = Table(box=None)
    for col in ("name", "login", "partition", "shared dir", "runtime"):
        table.add_column(col)
    for c in config.load_all().values():
        table.add_row(c.name, c.login, c.partition or "(default)", c.shared_dir, c.runtime)
    out.print(table)


def remove(name: str):
    """Forget a cluster (nothing on the cluster is touched)."""
    from dlbox.cluster import config

    _say(f"removed {name}" if config.remove(name) else f"no cluster named {name}")


def probe(name: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")):
    """Runtimes, GPUs, drivers, shm and memlock of every node (one short srun), and the Slurm version."""
    from rich.table import Table

    from dlbox.cluster import config
    from dlbox.cluster import probe as pr

    facts = pr.probe(config.get(name))
    if as_json:
        print(json.dumps(facts.to_dict(), indent=2))
        return
    out.print(f"[bold]{name}[/bold]: Slurm {facts.slurm}, pyxis {'yes' if facts.pyxis else 'no'}, "
              f"shared dir {facts.shared_dir}")
    table = Table(box=None)
    for col in ("node", "runtimes", "GPUs", "driver", "shm", "memlock", "problems"):
        table.add_column(col)
    for n in facts.nodes:
        d = n.driver
        gpus = ", ".join(sorted({f"{g.name} ({g.compute_cap})" for g in d.gpus})) if d and d.gpus else "none"
        table.add_row(n.name, ", ".join(n.runtimes) or "none", gpus, (d.driver_version if d else None) or "-",
                      f"{(n.shm_kib or 0) / 2**20:.1f} GiB", n.memlock, "; ".join(n.broken))
    out.print(table)
    for node in facts.down:
        out.print(f"[yellow]{escape(node)}: not probed (down, drained or did not answer)[/yellow]")
    try:
        out.print(f"runtime dlbox uses: [bold]{facts.pick_runtime(config.get(name).runtime)}[/bold]")
    except Exception as exc:  # noqa: BLE001 - shown, not fatal for a probe
        out.print(f"[yellow]{escape(getattr(exc, 'message', str(exc)))}[/yellow]")


def built_for(name: str, path: Path, *, refresh: bool = False):
    """Spec → (this machine's build facts + the cluster's GPUs) → Plan → the image, built here."""
    from dlbox import workflow
    from dlbox.cluster import config
    from dlbox.cluster import probe as pr
    from dlbox.cluster.jobs import Built
    from dlbox.engine.docker import Docker
    from dlbox.ship.deploy import deploy
    from dlbox.spec import load_spec
    from dlbox.workflow import containers

    cluster = config.get(name)
    facts = pr.probe(cluster) if refresh else pr.cached(cluster)
    docker = Docker()
    host = pr.for_cluster(workflow.observe_for(load_spec(path), docker), facts)
    p = workflow.load_project(path, docker=docker, host=host, check_images=True, say=_say)
    for w in p.plan.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(w)}")
    result = containers.ensure_image(p, say=_say)
    return cluster, facts, Built(p.plan, Path(p.spec.project_dir), result.image, docker, deploy)


def push(name: str = typer.Argument(...), path: Path = PathOpt,
         runtime: Optional[str] = typer.Option(None, "--runtime")):
    """Put the project's image where the cluster's runtime reads it (squashfs or every node's engine)."""
    from dlbox.cluster import images

    cluster, facts, b = built_for(name, path)
    rt = facts.pick_runtime(runtime or cluster.runtime)
    shipped = images.ship(cluster, b.docker, b.image, rt, shared_dir=facts.shared_dir,
                          nodes=[n.name for n in facts.nodes], say=_say, deploy=b.deploy)
    for node, what in shipped.nodes.items():
        out.print(f"{node}: {what}")
    out.print(f"{shipped.ref}  ({shipped.seconds:.1f} s)")


def submit(ctx: typer.Context, cluster: str = typer.Option(..., "--cluster", "-c"),
           nodes: int = typer.Option(1, "--nodes", "-N"),
           gpus_per_node: int = typer.Option(0, "--gpus-per-node", "-G"),
           time_limit: Optional[str] = typer.Option(None, "--time", "-t", help="Slurm time limit, e.g. 4:00:00"),
           runtime: Optional[str] = typer.Option(None, "--runtime", help="override the cluster's runtime"),
           exclude: Optional[list[str]] = typer.Option(None, "--exclude", "-x", help="a node to leave out (repeat)"),
           no_preflight: bool = typer.Option(False, "--no-preflight", help="skip the per-node checks"),
           render_only: bool = typer.Option(False, "--render", help="print the sbatch script; submit nothing"),
           path: Path = PathOpt):
    """Run the project on N nodes of a Slurm cluster:  dlbox submit -c uni -N 2 -G 8 -- python train.py"""
    from dlbox.cluster import jobs

    c, facts, b = built_for(cluster, path)
    req = jobs.Request(nodes=nodes, gpus_per_node=gpus_per_node, time=time_limit, command=tuple(ctx.args),
                       runtime=runtime, exclude=tuple(exclude or ()), preflight=not no_preflight)
    script, job = jobs.submit(c, facts, b, req, render_only=render_only, say=_say)
    if job is None:
        print(script, end="")
        return
    _say(f"logs: dlbox logs {job}   cancel: dlbox cancel {job}")
    out.print(job)


def verify_cluster(name: str, path: Path, nodes: int, gpus_per_node: int, exclude: tuple[str, ...] = (),
                   as_json: bool = False) -> int:
    """`dlbox verify --cluster NAME -N 2`: the preflight alone on every node; failing nodes named."""
    from dlbox.cluster import jobs

    c, facts, b = built_for(name, path)
    req = jobs.Request(nodes=nodes, gpus_per_node=gpus_per_node, exclude=exclude)
    job, checks, row = jobs.verify(c, facts, b, req, say=_say)
    if as_json:
        print(json.dumps({"job": job, "state": row.state if row else None,
                          "checks": [c.__dict__ for c in checks]}, indent=2))
    else:
        for ch in checks:
            style = {"ok": "green", "warn": "yellow"}.get(ch.status, "red")
            out.print(f"[{style}]{ch.status:4}[/{style}] {ch.node:12} {ch.check:10} {escape(ch.detail)}")
    bad = sorted({ch.node for ch in checks if ch.status == "fail"})
    if bad:
        err.print(f"[bold red]error:[/bold red] preflight failed on {', '.join(bad)}")
        err.print(f"  [bold]fix:[/bold] dlbox submit ... --exclude {' --exclude '.join(bad)}   (or repair them)")
        return 1
    if row is None or row.state != "COMPLETED" or not checks:
        err.print(f"[bold red]error:[/bold red] preflight job {job} ended {row.state if row else 'unseen'}; "
                  f"see dlbox logs {job}")
        return 1
    return 0


def jobs_(cluster: Optional[str] = ClusterOpt):
    """dlbox's jobs on the cluster(s): ID, state, time, nodes."""
    from rich.table import Table

    from dlbox.cluster import jobs

    table = Table(box=None)
    for col in ("cluster", "job", "name", "state", "time", "nodes"):
        table.add_column(col)
    for name, row in jobs.jobs(cluster):
        table.add_row(name, row.job_id, row.name, row.state, row.elapsed, row.nodes or row.reason)
    out.print(table)


def job_logs(job: str, cluster: Optional[str] = None, *, follow: bool = False, tail: Optional[int] = None) -> int:
    from dlbox.cluster import config, jobs
    from dlbox.cluster.login import Login
    from dlbox.cluster.slurm import Slurm

    text = jobs.logs(job, cluster, tail=tail)
    print(text, end="")
    if not follow:
        return 0
    c, _ = jobs.record(job, cluster)
    slurm, seen = Slurm(Login(config.get(c.name))), len(text)
    while True:
        row = slurm.job(job)
        text = jobs.logs(job, c.name)
        print(text[seen:], end="", flush=True)
        seen = len(text)
        if row is None or row.finished:
            return 0
        time.sleep(2)


def logs(job: str = typer.Argument(..., help="job ID"), cluster: Optional[str] = ClusterOpt,
         follow: bool = typer.Option(False, "--follow", "-f"), tail: Optional[int] = typer.Option(None, "--tail")):
    """A job's output (every node, the preflight lines first)."""
    raise typer.Exit(job_logs(job, cluster, follow=follow, tail=tail))


def cancel(job: str = typer.Argument(..., help="job ID"), cluster: Optional[str] = ClusterOpt):
    """scancel the job and make sure none of its containers is left on any node."""
    from dlbox.cluster import jobs

    removed = jobs.cancel(job, cluster, say=_say)
    _say(f"cancelled {job}" + (f"; removed {len(removed)} leftover container(s)" if removed else "; no container left"))


def register(app: typer.Typer) -> None:
    passthrough = {"allow_extra_args": True, "ignore_unknown_options": True}
    group.command()(add)
    group.command(name="list")(list_)
    group.command()(remove)
    group.command()(probe)
    group.command()(push)
    group.command()(logs)
    app.add_typer(group, name="cluster")
    app.command(context_settings=passthrough)(submit)
    app.command(name="jobs")(jobs_)
    app.command()(cancel)

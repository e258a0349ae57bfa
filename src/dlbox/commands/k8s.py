"""Kubernetes verbs: k8s probe, render (validated offline), validate, apply, logs, delete."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from dlbox.report import LazyConsole, escape

err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)
out = LazyConsole(highlight=False, soft_wrap=True)
group = typer.Typer(help="Kubernetes: render a multi-node job (JobSet, Job, TrainJob, PyTorchJob), validate, apply.",
                    no_args_is_help=True)
ContextOpt = typer.Option(None, "--context", help="kubeconfig context")
NamespaceOpt = typer.Option(None, "--namespace", "-n")


def _say(msg: str) -> None:
    err.print(f"[dim]dlbox:[/dim] {escape(msg)}")


def _versions(k8s_version: Optional[list[str]]) -> tuple[str, ...]:
    from dlbox.k8s.validate import DEFAULT_VERSIONS, normalize_version

    return tuple(normalize_version(v) for v in k8s_version) if k8s_version else DEFAULT_VERSIONS


def _check(docs: list[dict], versions: tuple[str, ...]) -> None:
    from dlbox.k8s.render import K8sError
    from dlbox.k8s.validate import validate

    problems = validate(docs, versions)
    if problems:
        for p in problems[1:]:
            err.print(f"[red]invalid:[/red] {escape(p.line())}")
        raise K8sError(f"the manifest is invalid: {problems[0].line()}",
                       fix="a dlbox bug if rendered unchanged; else fix the field named")


def probe(context: Optional[str] = ContextOpt):
    """Server version, the job kinds installed, and the GPU nodes' drivers (GPU Feature Discovery labels)."""
    from dlbox.k8s import kubectl

    facts = kubectl.probe(kubectl.Kubectl(context))
    out.print(f"server {facts.server_version}; kinds: {', '.join(facts.kinds)}; dlbox renders: {facts.pick_kind()}")
    for n in facts.nodes:
        out.print(f"  {n['name']}: driver {n['driver']}, {n['count']} x {n['product']} (compute {n['compute_cap']})")


def render(ctx: typer.Context,
           nodes: int = typer.Option(1, "--nodes", "-N"),
           gpus_per_node: int = typer.Option(0, "--gpus-per-node", "-G"),
           kind: str = typer.Option("auto", "--kind", help="auto|jobset|job|trainjob|pytorchjob"),
           image: Optional[str] = typer.Option(None, "--image", help="REGISTRY/NAME:TAG the cluster pulls (default: the project's, built here)"),
           name: Optional[str] = typer.Option(None, "--name"),
           shm: str = typer.Option("16Gi", "--shm"),
           uid: int = typer.Option(1000, "--uid"),
           k8s_version: Optional[list[str]] = typer.Option(None, "--k8s-version", help="validate for this version (repeat); default 1.30 and 1.37"),
           context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt,
           no_preflight: bool = typer.Option(False, "--no-preflight"),
           path: Path = typer.Option(Path("."), "--path", "-C")):
    """Print the job's YAML, validated offline:  dlbox k8s render -N 2 -G 8 --image reg/img:tag -- python train.py"""
    print(_render(ctx.args, nodes, gpus_per_node, kind, image, name, shm, uid, k8s_version, context, namespace,
                  no_preflight, path), end="")


def _render(args, nodes, gpus_per_node, kind, image, name, shm, uid, k8s_version, context, namespace, no_preflight,
            path) -> str:
    from dlbox.k8s import kubectl
    from dlbox.k8s.render import K8sJob, to_yaml
    from dlbox.k8s.render import render as do_render
    from dlbox.spec import load_spec

    spec = load_spec(path, required=False)
    project = getattr(spec, "name", None) or Path(path).resolve().name
    facts = None
    if kind == "auto" or not k8s_version:
        try:
            facts = kubectl.probe(kubectl.Kubectl(context))
        except Exception as exc:  # noqa: BLE001 - no cluster reachable: the defaults, said so
            _say(f"no cluster answered ({getattr(exc, 'message', exc)}): "
                 + ("--kind jobset, " if kind == "auto" else "") + "validating for Kubernetes 1.30 and 1.37")
    if kind == "auto":
        kind = facts.pick_kind() if facts else "jobset"
        if facts:
            _say(f"--kind auto: {kind} (from kubectl api-resources)")
    if not k8s_version and facts and facts.server_version:
        k8s_version = [facts.server_version]   # validate for the cluster's own version
    if image is None:
        from dlbox.commands.core import _built, _project

        image = _built(_project(path, check_images=True), quiet=True)
        _say(f"image {image}: push it where the cluster can pull it (dlbox push), then --image REGISTRY/{image}")
    command = tuple(args) or ("python", "train.py")
    job = K8sJob(name=(name or f"dlbox-{project}").lower().replace("_", "-"), image=image, nodes=nodes,
                 gpus_per_node=gpus_per_node, command=command, shm=shm, uid=uid, namespace=namespace,
                 preflight=not no_preflight)
    docs = do_render(job, kind)
    _check(docs, _versions(k8s_version))
    return to_yaml(docs)


def validate(files: list[Path] = typer.Argument(..., help="manifest YAML files ('-' = stdin)"),
             k8s_version: Optional[list[str]] = typer.Option(None, "--k8s-version")):
    """Validate manifests offline (strict: unknown fields are errors), one line per problem."""
    import yaml

    from dlbox.k8s.validate import validate as do_validate

    bad = 0
    for f in files:
        text = sys.stdin.read() if str(f) == "-" else f.read_text()
        try:
            docs = [d for d in yaml.safe_load_all(text) if d]
        except yaml.YAMLError as exc:
            err.print(f"[red]invalid:[/red] {f}: not YAML ({escape(str(exc).splitlines()[0])})")
            bad += 1
            continue
        for p in do_validate(docs, _versions(k8s_version)):
            err.print(f"[red]invalid:[/red] {f}: {escape(p.line())}")
            bad += 1
    if not bad:
        out.print("valid")
    raise typer.Exit(1 if bad else 0)


def apply(file: Path = typer.Argument(..., help="the YAML from dlbox k8s render"),
          k8s_version: Optional[list[str]] = typer.Option(None, "--k8s-version"),
          context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt):
    """Validate, then kubectl apply (your kubeconfig; dlbox never talks to the API server itself)."""
    import yaml

    from dlbox.k8s import kubectl

    text = file.read_text()
    _check([d for d in yaml.safe_load_all(text) if d], _versions(k8s_version))
    out.print(kubectl.apply(kubectl.Kubectl(context, namespace), text).strip())


def logs(name: str, follow: bool = typer.Option(False, "--follow", "-f"), tail: int = typer.Option(200, "--tail"),
         context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt):
    """Every pod's output, prefixed with the pod name."""
    from dlbox.k8s import kubectl

    raise typer.Exit(kubectl.logs(kubectl.Kubectl(context, namespace), name, follow=follow, tail=tail).wait())


def delete(name: str, context: Optional[str] = ContextOpt, namespace: Optional[str] = NamespaceOpt):
    """Delete the job dlbox applied (every kind it may have rendered, by label)."""
    from dlbox.k8s import kubectl

    k = kubectl.Kubectl(context, namespace)
    kinds = kubectl.probe(k).kinds
    out.print(kubectl.delete(k, name, kinds).strip() or "nothing to delete")


def register(app: typer.Typer) -> None:
    passthrough = {"allow_extra_args": True, "ignore_unknown_options": True}
    group.command()(probe)
    group.command(context_settings=passthrough)(render)
    group.command()(validate)
    group.command()(apply)
    group.command()(logs)
    group.command()(delete)
    app.add_typer(group, name="k8s")

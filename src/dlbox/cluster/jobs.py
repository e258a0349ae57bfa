"""Cluster use cases, in order: plan for the cluster, build, ship, render, submit; and the job's
life after that (jobs, logs, cancel), and the preflight alone (verify).

The caller (commands/cluster.py through workflow) plans and builds the project's image here, with
this machine's build facts (proxy, CA, local wheels) and the cluster's GPU facts
(`probe.for_cluster`: the lowest driver and every GPU of its nodes).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from dlbox import __version__
from dlbox.cluster import config, images, probe
from dlbox.cluster.config import Cluster, ClusterError
from dlbox.cluster.login import Login, dq, last_line, q
from dlbox.cluster.runtime import LABEL_JOB
from dlbox.cluster.sbatch import JobPlan, render
from dlbox.cluster.slurm import JOB_PREFIX, JobRow, Slurm, check_job_id, parse_version, require_version
from dlbox.engine.paths import cache_dir

Say = Callable[[str], None]
PREFLIGHT_PY = (Path(__file__).parent / "preflight_inside.py").read_text()
_TIME = re.compile(r"^(\d+-)?\d{1,3}(:\d{2}){0,2}$")


@dataclass(frozen=True)
class Request:
    nodes: int = 1
    gpus_per_node: int = 0
    time: str | None = None
    command: tuple[str, ...] = ()
    runtime: str | None = None
    exclude: tuple[str, ...] = ()
    preflight: bool = True

    def validate(self, facts: probe.ClusterFacts) -> None:
        if self.nodes < 1:
            raise ClusterError(f"-N {self.nodes}: the number of nodes must be at least 1", fix="-N 2")
        if self.gpus_per_node < 0:
            raise ClusterError(f"--gpus-per-node {self.gpus_per_node} is negative", fix="--gpus-per-node 8")
        if self.time and not _TIME.match(self.time):
            raise ClusterError(f"--time {self.time!r} is not a Slurm time limit", fix="e.g. --time 4:00:00 or 1-00:00:00")
        names = {n.name for n in facts.nodes}
        unknown = [x for x in self.exclude if x not in names and x not in facts.down]
        if unknown:
            raise ClusterError(f"--exclude {', '.join(unknown)}: no such node in {facts.cluster}",
                               fix=f"nodes: {', '.join(sorted(names))}")
        usable = len(names - set(self.exclude))
        if self.nodes > usable:
            raise ClusterError(f"-N {self.nodes} asks for more nodes than {facts.cluster} has up ({usable})",
                               fix="dlbox cluster probe NAME lists them")


@dataclass(frozen=True)
class Built:
    """The project as the caller planned and built it for this cluster (workflow does that)."""

    plan: object          # dlbox.plan.Plan
    project_dir: Path
    image: str
    docker: object        # dlbox.engine.docker.Docker
    deploy: Callable | None = None   # dlbox.ship.deploy.deploy, for Docker/Podman nodes


def plan_job(cluster: Cluster, facts: probe.ClusterFacts, b: Built, req: Request, *, run_dir: str,
             user: str, run: bool = True) -> JobPlan:
    rt = facts.pick_runtime(req.runtime or cluster.runtime)
    if rt == "oci":
        require_version(parse_version(f"slurm {facts.slurm}"), cluster.name, oci=True)
    plan = b.plan
    command = req.command or tuple(plan.run.command or ())
    if run and not command:
        raise ClusterError("no command to run", fix="dlbox submit --cluster NAME -N 2 -- python train.py")
    reasons = [f"runtime {rt}: first of pyxis > apptainer > docker > podman > oci on every node"
               if not (req.runtime or cluster.runtime != "auto") else f"runtime {rt}: asked for",
               f"image {b.image}: {plan.reasons[0] if plan.reasons else plan.choice.base_image}"]
    return JobPlan(name=f"{JOB_PREFIX}{plan.project}", project=plan.project, nodes=req.nodes,
                   gpus_per_node=req.gpus_per_node, runtime=rt, image=b.image, image_id="", workdir=run_dir,
                   shared_dir=facts.shared_dir, command=command, user=user, partition=cluster.partition,
                   time=req.time, exclude=req.exclude, preflight=req.preflight, run=run,
                   min_shm_gib=1.0, extra_env=run_env(plan), reasons=tuple(reasons))


def run_env(plan) -> tuple[tuple[str, str], ...]:
    """[run] env of dlbox.toml, into every node's container (the submitting shell's own environment
    is not: it may hold tokens)."""
    env = tuple(sorted(dict(plan.run.env).items()))
    for k, _ in env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise ClusterError(f"[run] env name {k!r} is not a shell variable name", fix="use letters, digits and _")
    return env


def submit(cluster: Cluster, facts: probe.ClusterFacts, b: Built, req: Request, *, render_only: bool = False,
           run: bool = True, say: Say) -> tuple[str, str | None]:
    """Ship the image and the code, render, sbatch. → (script, job ID or None when only rendered)."""
    req.validate(facts)
    login = Login(cluster)
    docker, image = b.docker, b.image
    user = login.check("echo $(id -u):$(id -g)", what="id").strip()
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1000) % 1000:03d}"
    run_dir = f"{facts.shared_dir}/runs/{b.plan.project}-{stamp}"
    job = plan_job(cluster, facts, b, req, run_dir=run_dir, user=user, run=run)
    nodes = [n.name for n in facts.nodes if n.name not in req.exclude]
    if render_only:
        if job.runtime in images.SQUASH_RUNTIMES:
            iid = images.image_id(docker, image)
            job = replace(job, image=f"{facts.shared_dir}/images/{iid.split(':')[-1][:16]}.sqsh", image_id=iid)
        return render(job, preflight_py=PREFLIGHT_PY, dlbox_version=__version__), None
    shipped = images.ship(cluster, docker, image, job.runtime, shared_dir=facts.shared_dir, nodes=nodes, say=say,
                          deploy=b.deploy)
    job = replace(job, image=shipped.ref, image_id=shipped.image_id)
    images.ship_code(cluster, Path(b.project_dir), run_dir)
    script = render(job, preflight_py=PREFLIGHT_PY, dlbox_version=__version__)
    login.write(f"{run_dir}/job.sbatch", script.encode(), mode="644")
    login.check(f"mkdir -p {dq(job.log_dir)}", what="creating the log directory")  # sbatch does not
    job_id = Slurm(login).submit(script)
    remember(cluster.name, job_id, {"runtime": job.runtime, "image": job.image, "run_dir": run_dir,
                                    "log": f"{job.log_dir}/{job.name}-{job_id}.out", "nodes": nodes,
                                    "submitted": time.time()})
    return script, job_id


# -- after submission ----------------------------------------------------------------------------


def _records(name: str) -> Path:
    return cache_dir("clusters", name, "jobs")


def remember(name: str, job: str, record: dict) -> None:
    (_records(name) / f"{job}.json").write_text(json.dumps(record, indent=2) + "\n")


def record(job: str, cluster_name: str | None) -> tuple[Cluster, dict]:
    """The cluster a job ID belongs to (dlbox remembers what it submitted) and its record."""
    check_job_id(job)
    names = [cluster_name] if cluster_name else sorted(config.load_all())
    for n in names:
        f = _records(n) / f"{job}.json"
        if f.exists():
            return config.get(n), json.loads(f.read_text())
    if cluster_name:
        return config.get(cluster_name), {}
    raise ClusterError(f"job {job} was not submitted by dlbox from this machine",
                       fix="name its cluster: --cluster NAME")


def wait(slurm: Slurm, job: str, *, timeout: float, poll: float = 1.0) -> JobRow | None:
    end = time.monotonic() + timeout
    row = slurm.job(job)
    while row is not None and not row.finished and time.monotonic() < end:
        time.sleep(poll)
        row = slurm.job(job)
    return row


def jobs(cluster_name: str | None) -> list[tuple[str, JobRow]]:
    names = [cluster_name] if cluster_name else sorted(config.load_all())
    return [(n, row) for n in names for row in Slurm(Login(config.get(n))).jobs()]


def logs(job: str, cluster_name: str | None, *, tail: int | None = None) -> str:
    cluster, rec = record(job, cluster_name)
    path = rec.get("log") or log_path_from_scontrol(cluster, job)
    cmd = f"tail -n {int(tail)} {dq(path)}" if tail else f"cat {dq(path)}"
    proc = Login(cluster).sh(cmd, what="reading the job log")
    if proc.returncode != 0:
        raise ClusterError(f"no log for job {job} yet at {cluster.name}:{path}",
                           fix=f"dlbox jobs --cluster {cluster.name} (a pending job has no log)")
    return proc.stdout.decode(errors="replace")


def log_path_from_scontrol(cluster: Cluster, job: str) -> str:
    login = Login(cluster)
    proc = login.sh(q(["scontrol", "-o", "show", "job", job]), what=f"scontrol show job {job}")
    if proc.returncode != 0:
        raise ClusterError(f"no log for job {job} on {cluster.name}: {last_line(proc.stderr) or 'Slurm does not know it'}",
                           fix=f"dlbox jobs --cluster {cluster.name} lists the running ones; Slurm forgets finished "
                               "jobs after MinJobAge, dlbox remembers the ones it submitted from here")
    out = proc.stdout.decode(errors="replace")
    m = re.search(r"StdOut=(\S+)", out)
    if not m:
        raise ClusterError(f"scontrol does not say where job {job} writes its log", fix="ask sacct -j JOB")
    return m.group(1)


def cancel(job: str, cluster_name: str | None, *, say: Say, timeout: float = 60) -> list[str]:
    """scancel, wait for the job to end, then make sure no container of it is left on any node
    (Docker/Podman containers are the engine's children; the node wrapper removes them on TERM,
    this sweep catches a wrapper that was SIGKILLed). → the containers the sweep removed."""
    cluster, rec = record(job, cluster_name)
    slurm = Slurm(Login(cluster))
    row = slurm.job(job)
    if row is not None and not row.finished:
        try:
            slurm.cancel(job)
        except ClusterError:
            if not ((row := slurm.job(job)) is None or row.finished):   # it ended meanwhile: fine
                raise
        row = wait(slurm, job, timeout=timeout, poll=0.5)
    say(f"job {job}: {row.state if row else 'gone'}")
    removed: list[str] = []
    if rec.get("runtime") in ("docker", "podman"):
        removed = sweep(cluster, job, rec["runtime"], rec.get("nodes") or [], say=say)
    return removed


def sweep(cluster: Cluster, job: str, engine: str, nodes: list[str], *, say: Say) -> list[str]:
    from dlbox import ssh

    user = None if cluster.is_local else (cluster.login.split("@")[0] if "@" in cluster.login else None)
    cmd = (f"ids=$({engine} ps -aq --filter label={LABEL_JOB}={job}); "
           f'[ -z "$ids" ] || {engine} rm -f $ids >/dev/null; echo $ids')
    removed = []
    for node in nodes:
        try:
            proc = ssh.run(ssh.Target.parse(f"{user}@{node}" if user else node), cmd, timeout=60, what="cleanup")
        except Exception as exc:  # noqa: BLE001 - one unreachable node must not hide the others
            say(f"warning: could not check {node} for containers of job {job}: {getattr(exc, 'message', exc)}")
            continue
        left = proc.stdout.decode().split()
        if left:
            say(f"{node}: removed {len(left)} container(s) of job {job} that outlived it")
            removed += [f"{node}:{c}" for c in left]
    return removed


@dataclass(frozen=True)
class NodeCheck:
    node: str
    check: str
    status: str
    detail: str


def parse_preflight(log: str) -> list[NodeCheck]:
    out = []
    for line in log.splitlines():
        i = line.find("DLBOX-PREFLIGHT|")
        if i >= 0:
            parts = line[i:].split("|", 4)
            if len(parts) == 5:
                out.append(NodeCheck(parts[1], parts[2], parts[3], parts[4].strip()))
    return out


def verify(cluster: Cluster, facts: probe.ClusterFacts, b: Built, req: Request, *, say: Say,
           timeout: float = 900) -> tuple[str, list[NodeCheck], JobRow | None]:
    """The preflight alone, on N nodes: submit, wait, read each node's checks from the log."""
    _, job = submit(cluster, facts, b, req, run=False, say=say)
    assert job is not None
    say(f"preflight job {job} submitted; waiting")
    row = wait(Slurm(Login(cluster)), job, timeout=timeout)
    if row is not None and not row.finished:
        Slurm(Login(cluster)).cancel(job)
        raise ClusterError(f"the preflight job {job} did not finish within {timeout:.0f} s (state {row.state})",
                           fix=f"dlbox logs {job}; is the partition busy? (squeue)")
    return job, parse_preflight(logs(job, cluster.name)), row

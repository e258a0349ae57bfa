"""Slurm's own commands (sbatch, squeue, scontrol, sacct, scancel, sinfo) and their outputs.

dlbox never reimplements the scheduler: it asks these commands in machine-readable forms
(`--parsable`, `-h -o` with a `|` separator, `scontrol -o`) and reads the few fields it needs.
Parsers are pure and tested on outputs recorded from Slurm 22.05 (tests/fixtures/slurm/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from dlbox.cluster.config import ClusterError
from dlbox.cluster.login import Login, last_line, q

# srun --overlap (20.11) lets the image-mount step and the training step share a node;
# --gpus-per-node (19.05); the Slurm-OCI runtime needs srun --container (21.08).
MIN_SLURM = Version("20.11")
MIN_SLURM_OCI = Version("21.08")
JOB_PREFIX = "dlbox-"
_SEP = "|"


@dataclass(frozen=True)
class NodeRow:
    name: str
    state: str
    gres: str
    cpus: int


@dataclass(frozen=True)
class JobRow:
    job_id: str
    name: str
    state: str
    elapsed: str = ""
    nodes: str = ""
    reason: str = ""
    exit_code: str = ""

    @property
    def finished(self) -> bool:
        return self.state not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED",
                                  "RESIZING", "SIGNALING", "STAGE_OUT")


def parse_version(text: str) -> Version:
    """`sinfo --version` → Version ('slurm-wlm 22.05.8', 'slurm 23.11.4')."""
    m = re.search(r"slurm(?:-wlm)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    try:
        if m:
            return Version(m.group(1))
    except InvalidVersion:
        pass
    raise ClusterError(f"cannot read the Slurm version from {text.strip()[:80]!r}",
                       fix="check that sinfo --version works on the login node")


def show(v: Version) -> str:
    """Slurm's own spelling: 22.05.8, not 22.5.8."""
    return f"{v.major}.{v.minor:02d}" + (f".{v.micro}" if len(v.release) > 2 else "")


def require_version(version: Version, where: str, *, oci: bool = False) -> None:
    need = MIN_SLURM_OCI if oci else MIN_SLURM
    if version < need:
        why = "srun --container (Slurm OCI)" if oci else "srun --overlap and --gpus-per-node"
        raise ClusterError(f"Slurm {show(version)} on {where} is older than {show(need)}, which dlbox needs ({why})",
                           fix="ask the admins for a newer Slurm, or pick another runtime with --runtime")


def parse_sinfo_nodes(text: str) -> list[NodeRow]:
    """`sinfo -h -N -o '%N|%t|%G|%c'` → one row per node (a node in two partitions appears once)."""
    rows: dict[str, NodeRow] = {}
    for line in text.splitlines():
        parts = line.strip().split(_SEP)
        if len(parts) != 4 or not parts[0]:
            continue
        cpus = int(parts[3]) if parts[3].isdigit() else 0
        rows.setdefault(parts[0], NodeRow(parts[0], parts[1].rstrip("*~#!%$@^-"), parts[2], cpus))
    return list(rows.values())


def parse_squeue(text: str) -> list[JobRow]:
    """`squeue -h -o '%i|%j|%T|%M|%N|%R'`."""
    out = []
    for line in text.splitlines():
        p = line.strip().split(_SEP)
        if len(p) >= 6:
            out.append(JobRow(p[0], p[1], p[2], elapsed=p[3], nodes=p[4], reason=p[5]))
    return out


def parse_scontrol_job(text: str) -> JobRow | None:
    """`scontrol -o show job ID` (one line of Key=Value words)."""
    fields = dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", text))
    if "JobId" not in fields:
        return None
    return JobRow(fields["JobId"], fields.get("JobName", ""), fields.get("JobState", ""),
                  elapsed=fields.get("RunTime", ""), nodes=fields.get("NodeList", ""),
                  reason=fields.get("Reason", ""), exit_code=fields.get("ExitCode", ""))


def parse_sacct(text: str) -> JobRow | None:
    """`sacct -n -P -X -o JobID,JobName,State,Elapsed,NodeList,ExitCode -j ID` (first line)."""
    for line in text.splitlines():
        p = line.strip().split(_SEP)
        if len(p) >= 6:
            return JobRow(p[0], p[1], p[2].split()[0], elapsed=p[3], nodes=p[4], exit_code=p[5])
    return None


def parse_job_id(text: str) -> str:
    """`sbatch --parsable` prints 'ID' or 'ID;CLUSTER'."""
    first = text.strip().splitlines()[-1] if text.strip() else ""
    job = first.split(";")[0]
    if not job.isdigit():
        raise ClusterError(f"sbatch did not print a job ID: {first!r}", fix="run the script by hand: dlbox submit ... --render")
    return job


def check_job_id(job: str) -> str:
    if not re.fullmatch(r"\d+(_\d+)?", job or ""):
        raise ClusterError(f"{job!r} is not a Slurm job ID", fix="dlbox jobs lists them")
    return job


class Slurm:
    """The scheduler behind one login node."""

    def __init__(self, login: Login):
        self.login = login

    def version(self) -> Version:
        proc = self.login.sh("sinfo --version", what="sinfo --version", timeout=60)
        if proc.returncode != 0:
            missing = proc.returncode == 127
            raise ClusterError(
                f"{'sinfo is not installed' if missing else 'sinfo failed'} on {self.login.where}"
                + ("" if missing else f": {last_line(proc.stderr)}"),
                fix="dlbox needs a Slurm login node (sinfo, sbatch, squeue on PATH)")
        return parse_version(proc.stdout.decode(errors="replace"))

    def nodes(self, partition: str | None) -> list[NodeRow]:
        argv = ["sinfo", "-h", "-N", "-o", "%N|%t|%G|%c"] + (["-p", partition] if partition else [])
        rows = parse_sinfo_nodes(self.login.check(q(argv), what="sinfo"))
        if not rows:
            raise ClusterError(f"partition {partition or '(default)'} on {self.login.where} has no nodes",
                               fix="sinfo -s lists the partitions; dlbox cluster add ... --partition NAME")
        return rows

    def submit(self, script: str) -> str:
        out = self.login.check("sbatch --parsable", input=script.encode(), what="sbatch",
                               fix="see the script with: dlbox submit ... --render")
        return parse_job_id(out)

    def job(self, job: str) -> JobRow | None:
        check_job_id(job)
        rows = parse_squeue(self.login.sh(q(["squeue", "-h", "-j", job, "-o", "%i|%j|%T|%M|%N|%R"]),
                                          what="squeue").stdout.decode(errors="replace"))
        if rows:
            return rows[0]
        proc = self.login.sh(q(["scontrol", "-o", "show", "job", job]), what="scontrol")
        row = parse_scontrol_job(proc.stdout.decode(errors="replace")) if proc.returncode == 0 else None
        if row:
            return row
        proc = self.login.sh(q(["sacct", "-n", "-P", "-X", "-o", "JobID,JobName,State,Elapsed,NodeList,ExitCode",
                                "-j", job]), what="sacct")
        return parse_sacct(proc.stdout.decode(errors="replace")) if proc.returncode == 0 else None

    def jobs(self) -> list[JobRow]:
        out = self.login.check('squeue -h -u "$(id -un)" -o ' + q(["%i|%j|%T|%M|%N|%R"]), what="squeue")
        return [r for r in parse_squeue(out) if r.name.startswith(JOB_PREFIX)]

    def cancel(self, job: str) -> None:
        self.login.check(q(["scancel", check_job_id(job)]), what=f"scancel {job}")

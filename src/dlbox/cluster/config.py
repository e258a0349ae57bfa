"""The clusters a user added: name → where to log in, partition, shared directory, runtime.

Kept as JSON in dlbox's config directory (`$XDG_CONFIG_HOME/dlbox/clusters.json`); written
atomically. Nothing here talks to a cluster.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import platformdirs

from dlbox.errors import DlboxError

RUNTIMES = ("auto", "pyxis", "apptainer", "docker", "podman", "oci")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_PARTITION = re.compile(r"^[A-Za-z0-9_.,-]+$")


class ClusterError(DlboxError):
    """A cluster, a node or a job cannot do what was asked."""


@dataclass(frozen=True)
class Cluster:
    name: str
    scheduler: str = "slurm"
    login: str = "local"          # "local" = run sbatch here; else user@host[:port] of the login node
    partition: str | None = None
    shared_dir: str = "$HOME/.dlbox"   # on a filesystem every node mounts (home, /scratch)
    runtime: str = "auto"         # auto = the first of pyxis > apptainer > docker > podman > oci found
    registry: str | None = None   # when set, nodes pull from it instead of dlbox shipping the image

    @property
    def is_local(self) -> bool:
        return self.login == "local"

    def validate(self) -> "Cluster":
        if not _NAME.match(self.name):
            raise ClusterError(f"cluster name {self.name!r} is not valid",
                               fix="use letters, digits, '.', '_' or '-' (e.g. uni)")
        if self.scheduler != "slurm":
            raise ClusterError(f"scheduler {self.scheduler!r} of cluster {self.name} is not supported",
                               fix="dlbox cluster add NAME --slurm LOGIN (Kubernetes: dlbox k8s render/apply)")
        if self.runtime not in RUNTIMES:
            raise ClusterError(f"runtime {self.runtime!r} of cluster {self.name} is not one of {', '.join(RUNTIMES)}",
                               fix="--runtime auto lets dlbox pick from what the nodes have")
        if self.partition is not None and not _PARTITION.match(self.partition):
            raise ClusterError(f"partition {self.partition!r} of cluster {self.name} is not a Slurm partition name",
                               fix="give the name sinfo shows, e.g. --partition gpu")
        if not self.shared_dir or any(c in self.shared_dir for c in "\n\r\t '\"`;|&<>()\\"):
            raise ClusterError(f"shared directory {self.shared_dir!r} of cluster {self.name} is not a plain path",
                               fix="give a directory every node mounts, e.g. --shared-dir /scratch/me/.dlbox")
        if not self.is_local:
            from dlbox.ssh import Target

            Target.parse(self.login)
        return self


def config_file() -> Path:
    base = os.environ.get("DLBOX_CONFIG") or platformdirs.user_config_dir("dlbox")
    return Path(base) / "clusters.json"


def load_all() -> dict[str, Cluster]:
    path = config_file()
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ClusterError(f"{path} is not valid JSON (line {exc.lineno})",
                           fix=f"fix or remove {path}, then dlbox cluster add again") from None
    known = {f.name for f in fields(Cluster)}
    out = {}
    for name, row in (raw.get("clusters") or {}).items():
        extra = set(row) - known
        if extra:
            raise ClusterError(f"{path}: cluster {name} has unknown field(s) {', '.join(sorted(extra))}",
                               fix=f"valid fields: {', '.join(sorted(known))}")
        out[name] = Cluster(**row).validate()
    return out


def get(name: str) -> Cluster:
    clusters = load_all()
    if name not in clusters:
        have = ", ".join(sorted(clusters)) or "none yet"
        raise ClusterError(f"no cluster named {name!r} (known: {have})",
                           fix=f"dlbox cluster add {name} --slurm user@login-node")
    return clusters[name]


def save(cluster: Cluster) -> Path:
    cluster.validate()
    clusters = load_all()
    clusters[cluster.name] = cluster
    return _write(clusters)


def remove(name: str) -> bool:
    clusters = load_all()
    if clusters.pop(name, None) is None:
        return False
    _write(clusters)
    return True


def _write(clusters: dict[str, Cluster]) -> Path:
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"clusters": {n: asdict(c) for n, c in sorted(clusters.items())}}, indent=2) + "\n")
    os.replace(tmp, path)
    return path

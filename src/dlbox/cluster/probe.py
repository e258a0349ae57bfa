"""What every node of a partition has: runtimes, GPUs and driver, shm, memlock.

One short `srun` over all responding nodes runs NODE_SCRIPT (plain sh: compute nodes need not
have Python). Its output is kept raw in the cache and parsed on load, so a cluster's plan can be
replayed anywhere. The cluster's Host is the weakest node's driver and every GPU seen: the image
must run on all of them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace

from packaging.version import Version

from dlbox.cluster.config import Cluster, ClusterError
from dlbox.cluster.login import Login, last_line, q
from dlbox.cluster.slurm import Slurm, parse_version, show
from dlbox.engine.paths import cache_dir
from dlbox.host import EngineFacts, Host, Limits
from dlbox.host.nvidia_smi import DriverFacts, cuda_max_for_driver, parse_nvidia_smi

ORDER = ("pyxis", "apptainer", "docker", "podman", "oci")
MARK = "DLBOX-NODE"
# Each line: DLBOX-NODE|<hostname>|<key>|<value>. `oci` = Slurm's oci.conf is there and the
# squashfs pieces dlbox's OCI bundle needs (squashfuse, runc or crun) are installed.
NODE_SCRIPT = r"""
h=$(hostname -s); p() { printf 'DLBOX-NODE|%s|%s|%s\n' "$h" "$1" "$2"; }
has() { command -v "$1" >/dev/null 2>&1; }
has enroot && p runtime enroot
{ has apptainer || has singularity; } && p runtime apptainer
if has docker; then if docker info >/dev/null 2>&1; then p runtime docker; else p broken "docker: $(docker info 2>&1 >/dev/null | tail -n1)"; fi; fi
has podman && p runtime podman
conf=$(dirname "${SLURM_CONF:-/etc/slurm/slurm.conf}")/oci.conf
[ -f "$conf" ] && has squashfuse && { has runc || has crun; } && p runtime oci
p cpus "$(nproc)"
p shm_kib "$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $2}')"
p memlock "$(ulimit -Hl)"
p gpus_env "${CUDA_VISIBLE_DEVICES:-}"
if has nvidia-smi; then
  { nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv 2>/dev/null || nvidia-smi 2>&1; } \
    | while IFS= read -r l; do p smi "$l"; done
fi
p done 1
"""


@dataclass(frozen=True)
class NodeFacts:
    name: str
    runtimes: tuple[str, ...] = ()
    broken: tuple[str, ...] = ()
    cpus: int = 0
    shm_kib: int | None = None
    memlock: str = ""
    smi_text: str = ""

    @property
    def driver(self) -> DriverFacts | None:
        if not self.smi_text.strip():
            return None
        try:
            facts = parse_nvidia_smi(self.smi_text)
        except Exception:  # noqa: BLE001 - an unreadable nvidia-smi is "no driver facts" for this node
            return None
        return replace(facts, source=f"nvidia-smi on {self.name}")


@dataclass(frozen=True)
class ClusterFacts:
    cluster: str
    slurm: str
    pyxis: bool
    shared_dir: str
    nodes: tuple[NodeFacts, ...]
    down: tuple[str, ...] = ()     # nodes sinfo lists but that could not be probed
    probed_at: float = field(default_factory=time.time)

    def runtimes(self) -> tuple[str, ...]:
        """Runtimes present on every probed node (pyxis: the srun plugin + enroot everywhere)."""
        if not self.nodes:
            return ()
        common = set.intersection(*(set(n.runtimes) for n in self.nodes))
        if self.pyxis and "enroot" in common:
            common.add("pyxis")
        return tuple(r for r in ORDER if r in common)

    def pick_runtime(self, wanted: str = "auto") -> str:
        have = self.runtimes()
        if wanted != "auto":
            if wanted not in have:
                missing = [n.name for n in self.nodes if wanted not in n.runtimes and not (wanted == "pyxis" and "enroot" in n.runtimes)]
                where = f"node(s) {', '.join(missing)}" if missing else "the login node (no srun --container-image)"
                raise ClusterError(f"runtime {wanted} is missing on {where} of cluster {self.cluster}",
                                   fix=f"runtimes on every node: {', '.join(have) or 'none'}; pick one with --runtime")
            return wanted
        if not have:
            detail = "; ".join(f"{n.name}: {', '.join(n.runtimes + n.broken) or 'nothing'}" for n in self.nodes)
            raise ClusterError(f"no container runtime is present on every node of {self.cluster} ({detail})",
                               fix="dlbox needs pyxis/enroot, Apptainer, Docker, Podman or Slurm OCI on the nodes")
        return have[0]

    def host(self) -> Host:
        """The cluster as one Host: the lowest driver, every GPU of every node."""
        drivers = [(n, n.driver) for n in self.nodes]
        with_driver = [(n, d) for n, d in drivers if d is not None and d.driver_version]
        if not with_driver:
            return Host(engine=EngineFacts(runtimes=("runc",)), server=f"cluster {self.cluster}")
        low_node, low = min(with_driver, key=lambda nd: Version(nd[1].driver_version))
        gpus = tuple(g for _, d in with_driver for g in d.gpus)
        cuda = min((d.cuda_max for _, d in with_driver if d.cuda_max), key=Version, default=None)
        driver = DriverFacts(low.driver_version, cuda or cuda_max_for_driver(low.driver_version), gpus,
                             source=f"lowest driver of {len(with_driver)} node(s) of cluster {self.cluster} ({low_node.name})")
        # what-if for the nodes: the cluster's runtime hands the GPUs to the container
        return Host(driver=driver, engine=EngineFacts(runtimes=("nvidia", "runc")), limits=Limits(),
                    server=f"cluster {self.cluster}")

    def to_dict(self) -> dict:
        return {"cluster": self.cluster, "slurm": self.slurm, "pyxis": self.pyxis, "shared_dir": self.shared_dir,
                "down": list(self.down), "probed_at": self.probed_at,
                "nodes": [{"name": n.name, "runtimes": list(n.runtimes), "broken": list(n.broken), "cpus": n.cpus,
                           "shm_kib": n.shm_kib, "memlock": n.memlock, "nvidia_smi": n.smi_text} for n in self.nodes]}

    @classmethod
    def from_dict(cls, d: dict) -> "ClusterFacts":
        nodes = tuple(NodeFacts(n["name"], tuple(n["runtimes"]), tuple(n.get("broken", ())), n.get("cpus", 0),
                                n.get("shm_kib"), n.get("memlock", ""), n.get("nvidia_smi", "")) for n in d["nodes"])
        return cls(d["cluster"], d["slurm"], d["pyxis"], d["shared_dir"], nodes, tuple(d.get("down", ())),
                   d.get("probed_at", 0.0))


def for_cluster(local: Host, facts: ClusterFacts) -> Host:
    """This machine's build facts (proxy, CA bundle, local wheels: the image is built here) with
    the cluster's GPU facts (the nodes run it)."""
    ch = facts.host()
    return replace(local, driver=ch.driver, engine=ch.engine if ch.driver else local.engine, server=ch.server)


def parse_node_lines(text: str) -> list[NodeFacts]:
    """NODE_SCRIPT output (all nodes interleaved) → one NodeFacts per node that finished."""
    raw: dict[str, dict[str, list[str]]] = {}
    for line in text.splitlines():
        parts = line.rstrip("\n").split("|", 3)
        if len(parts) != 4 or parts[0] != MARK:
            continue
        raw.setdefault(parts[1], {}).setdefault(parts[2], []).append(parts[3])
    nodes = []
    for name, kv in sorted(raw.items()):
        if "done" not in kv:
            continue
        shm = (kv.get("shm_kib") or [""])[0]
        cpus = (kv.get("cpus") or ["0"])[0]
        nodes.append(NodeFacts(name, tuple(dict.fromkeys(kv.get("runtime", []))), tuple(kv.get("broken", [])),
                               int(cpus) if cpus.isdigit() else 0, int(shm) if shm.isdigit() else None,
                               (kv.get("memlock") or [""])[0], "\n".join(kv.get("smi", []))))
    return nodes


def probe(cluster: Cluster, *, timeout: float = 180) -> ClusterFacts:
    """Ask the login node and one srun over all responding nodes of the partition."""
    login = Login(cluster)
    slurm = Slurm(login)
    version = slurm.version()
    shared = login.resolve(cluster.shared_dir)
    rows = slurm.nodes(cluster.partition)
    usable = [r.name for r in rows if r.state in ("idle", "mix", "alloc", "comp", "plnd")]
    down = tuple(r.name for r in rows if r.name not in usable)
    if not usable:
        raise ClusterError(f"no node of partition {cluster.partition or '(default)'} on {cluster.name} is up "
                           f"({', '.join(f'{r.name}: {r.state}' for r in rows)})", fix="sinfo -N -l shows why")
    pyxis = login.sh("srun --help 2>&1 | grep -q -- --container-image", what="srun --help").returncode == 0
    argv = ["srun", "-N", str(len(usable)), "-w", ",".join(usable), "--ntasks-per-node=1", "-t", "5",
            "-J", "dlbox-probe", "--quit-on-interrupt"] + (["-p", cluster.partition] if cluster.partition else [])
    proc = login.sh(q(argv + ["sh", "-c", NODE_SCRIPT]), what="the node probe (srun)", timeout=timeout)
    nodes = parse_node_lines(proc.stdout.decode(errors="replace"))
    seen = {n.name for n in nodes}
    silent = [u for u in usable if u.split(".")[0] not in seen]
    if not nodes:
        raise ClusterError(f"the node probe on {cluster.name} returned nothing: {last_line(proc.stderr)}",
                           fix="try it by hand: srun -N1 hostname")
    facts = ClusterFacts(cluster.name, show(version), pyxis, shared, tuple(nodes), down + tuple(silent))
    save(facts)
    return facts


def facts_file(name: str):
    return cache_dir("clusters", name) / "facts.json"


def save(facts: ClusterFacts) -> None:
    facts_file(facts.cluster).write_text(json.dumps(facts.to_dict(), indent=2) + "\n")


def cached(cluster: Cluster, *, max_age: float = 24 * 3600) -> ClusterFacts:
    """The last probe when it is recent enough, else a new one."""
    path = facts_file(cluster.name)
    if path.exists():
        try:
            facts = ClusterFacts.from_dict(json.loads(path.read_text()))
            if time.time() - facts.probed_at < max_age:
                return facts
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    return probe(cluster)


__all__ = ["ClusterFacts", "NodeFacts", "parse_node_lines", "probe", "cached", "parse_version"]

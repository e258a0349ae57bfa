"""A multi-node torchrun job as Kubernetes manifests (plain dicts, serialised as YAML; pure).

Kinds (`--kind auto` picks from `kubectl api-resources`, see kubectl.py):
- jobset      JobSet v1alpha2 (one CRD; deterministic pod FQDNs; Trainer v2 builds on it)
- job         Indexed Job + headless Service (no CRD at all)
- trainjob    Kubeflow Trainer v2 TrainJob (v1alpha1, `runtimePatches` as in v2.2/v2.3)
- pytorchjob  Kubeflow Training Operator v1 PyTorchJob (release-1.9)
Every kind gets: GPUs as limits (+ the GPU operator's taint tolerated), /dev/shm as a memory
emptyDir (the "Bus error … insufficient shared memory" fix, kubeflow/pipelines#6510), a
restricted securityContext (non-root, no privilege escalation, no capabilities, RuntimeDefault
seccomp), and the rendezvous address the engine gives the pods (an FQDN known before the pod
exists, so torchrun retries it while DNS catches up, pytorch#73682).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from dlbox.errors import DlboxError

KINDS = ("jobset", "job", "trainjob", "pytorchjob")
PORT = 29500
WORKSPACE = "/workspace"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")
PREFLIGHT_PY = (Path(__file__).resolve().parent.parent / "cluster" / "preflight_inside.py").read_text()


class K8sError(DlboxError):
    """A manifest cannot be rendered, validated or applied."""


@dataclass(frozen=True)
class K8sJob:
    name: str
    image: str
    nodes: int
    gpus_per_node: int
    command: tuple[str, ...]
    shm: str = "16Gi"
    cpu: str | None = None
    memory: str | None = None
    uid: int = 1000
    gid: int = 1000
    namespace: str | None = None
    preflight: bool = True
    env: tuple[tuple[str, str], ...] = field(default=())

    def validate(self) -> "K8sJob":
        if not _NAME.match(self.name):
            raise K8sError(f"job name {self.name!r} is not a DNS label of at most 42 characters",
                           fix="--name with lowercase letters, digits and '-' (pod names add suffixes)")
        if self.nodes < 1:
            raise K8sError(f"-N {self.nodes}: the number of nodes must be at least 1", fix="-N 2")
        if self.gpus_per_node < 0:
            raise K8sError(f"--gpus-per-node {self.gpus_per_node} is negative", fix="--gpus-per-node 8")
        for what, v in (("--shm", self.shm), ("--cpu", self.cpu), ("--memory", self.memory)):
            if v is not None and not _QUANTITY.match(v):
                raise K8sError(f"{what} {v!r} is not a Kubernetes quantity", fix=f"{what} 16Gi (or 4 for CPUs)")
        if self.uid == 0:
            raise K8sError("the pods would run as root (uid 0)", fix="--uid 1000: dlbox images run as a normal user")
        if not self.command:
            raise K8sError("no command to run", fix="dlbox k8s render -N 2 -- python train.py")
        return self

    @property
    def nproc(self) -> int:
        return self.gpus_per_node or 1


def _env(j: K8sJob) -> list[dict]:
    env = [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "OMP_NUM_THREADS", "value": "1"},
           {"name": "NCCL_DEBUG", "value": "WARN"}, {"name": "DLBOX_GPUS_PER_NODE", "value": str(j.gpus_per_node)}]
    if j.preflight:
        env.append({"name": "DLBOX_PREFLIGHT_PY", "value": PREFLIGHT_PY})
    return env + [{"name": k, "value": v} for k, v in j.env]


def _script(j: K8sJob, torchrun: list[str]) -> list[str]:
    """bash -c: the node's own checks (GPUs, CUDA, shm), then the user's command under torchrun."""
    cmd = list(j.command)
    if Path(cmd[0]).name in ("python", "python3") and len(cmd) > 1:
        cmd = cmd[1:]
    elif Path(cmd[0]).name == "torchrun":
        cmd = cmd[1:]
    pre = ('printf "%s" "$DLBOX_PREFLIGHT_PY" > /tmp/dlbox-preflight.py && python /tmp/dlbox-preflight.py local'
           ' || exit 3; ') if j.preflight else ""
    return ["bash", "-c", pre + "exec " + " ".join(shlex.quote(w) for w in torchrun + cmd)]


def _resources(j: K8sJob) -> dict:
    req: dict = {}
    lim: dict = {}
    if j.cpu:
        req["cpu"] = j.cpu
    if j.memory:
        req["memory"] = lim["memory"] = j.memory
    if j.gpus_per_node:
        lim["nvidia.com/gpu"] = j.gpus_per_node
    out = {}
    if req:
        out["requests"] = req
    if lim:
        out["limits"] = lim
    return out


def _container(j: K8sJob, name: str, command: list[str] | None) -> dict:
    c = {"name": name, "image": j.image, "imagePullPolicy": "IfNotPresent", "workingDir": WORKSPACE,
         "env": _env(j), "resources": _resources(j), "ports": [{"name": "c10d", "containerPort": PORT}],
         "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
         "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}
    if command:
        c["command"] = command
    return c


def _pod_spec(j: K8sJob, container: dict, **extra) -> dict:
    spec = {"restartPolicy": "Never", **extra, "containers": [container],
            "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": j.shm}}],
            "securityContext": {"runAsNonRoot": True, "runAsUser": j.uid, "runAsGroup": j.gid, "fsGroup": j.gid,
                                "seccompProfile": {"type": "RuntimeDefault"}}}
    if j.gpus_per_node:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return spec


def _meta(j: K8sJob, **extra) -> dict:
    m = {"name": j.name, "labels": {"app.kubernetes.io/managed-by": "dlbox", "app.kubernetes.io/name": j.name}, **extra}
    if j.namespace:
        m["namespace"] = j.namespace
    return m


def _torchrun(j: K8sJob, master: str, rank_env: str | None = None) -> list[str]:
    return ["torchrun", f"--nnodes={j.nodes}", f"--nproc-per-node={j.nproc}", "--rdzv-backend=c10d",
            f"--rdzv-endpoint={master}:{PORT}", f"--rdzv-id={j.name}", "--max-restarts=0"]


def jobset(j: K8sJob) -> list[dict]:
    master = f"{j.name}-node-0-0.{j.name}"  # <jobset>-<replicatedJob>-<jobIndex>-<podIndex>.<subdomain>
    pod = _pod_spec(j, _container(j, "train", _script(j, _torchrun(j, master))))
    return [{"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": _meta(j),
             "spec": {"network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
                      "failurePolicy": {"maxRestarts": 0},
                      "replicatedJobs": [{"name": "node", "replicas": 1, "template": {"spec": {
                          "completionMode": "Indexed", "completions": j.nodes, "parallelism": j.nodes,
                          "backoffLimit": 0, "template": {"spec": pod}}}}]}}]


def indexed_job(j: K8sJob) -> list[dict]:
    master = f"{j.name}-0.{j.name}"  # Indexed Job pod hostname <job>-<index>, subdomain = the Service
    pod = _pod_spec(j, _container(j, "train", _script(j, _torchrun(j, master))), subdomain=j.name)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": _meta(j),
           "spec": {"clusterIP": "None", "selector": {"job-name": j.name}, "publishNotReadyAddresses": True,
                    "ports": [{"name": "c10d", "port": PORT}]}}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(j),
           "spec": {"completionMode": "Indexed", "completions": j.nodes, "parallelism": j.nodes, "backoffLimit": 0,
                    "podFailurePolicy": {"rules": [{"action": "FailJob",
                                                    "onExitCodes": {"operator": "NotIn", "values": [0]}}]},
                    "template": {"metadata": {"labels": {"app.kubernetes.io/managed-by": "dlbox"}}, "spec": pod}}}
    return [svc, job]


def pytorchjob(j: K8sJob) -> list[dict]:
    # the operator injects MASTER_ADDR/PORT, WORLD_SIZE, RANK and PET_* for a bare torchrun
    def replica(n: int) -> dict:
        return {"replicas": n, "restartPolicy": "Never",
                "template": {"spec": _pod_spec(j, _container(j, "pytorch", _script(j, ["torchrun"])))}}

    spec = {"nprocPerNode": str(j.nproc), "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 0},
            "pytorchReplicaSpecs": {"Master": replica(1)}}
    if j.nodes > 1:
        spec["pytorchReplicaSpecs"]["Worker"] = replica(j.nodes - 1)
    return [{"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": _meta(j), "spec": spec}]


def trainjob(j: K8sJob) -> list[dict]:
    # the torch plugin injects PET_NNODES/NPROC_PER_NODE/NODE_RANK/MASTER_ADDR/PORT for torchrun
    res = _resources(j)
    trainer = {"image": j.image, "command": _script(j, ["torchrun"]), "numNodes": j.nodes,
               "env": _env(j), "numProcPerNode": j.nproc}
    if res:
        trainer["resourcesPerNode"] = res
    pod = {"volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": j.shm}}],
           "securityContext": _pod_spec(j, {})["securityContext"],
           "containers": [{"name": "node", "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
                           "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}
    return [{"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": _meta(j),
             "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": trainer,
                      "runtimePatches": [{"manager": "dlbox", "trainingRuntimeSpec": {"template": {"spec": {
                          "replicatedJobs": [{"name": "node", "template": {"spec": {"template": {"spec": pod}}}}]}}}}]}}]


RENDERERS = {"jobset": jobset, "job": indexed_job, "trainjob": trainjob, "pytorchjob": pytorchjob}


def render(j: K8sJob, kind: str) -> list[dict]:
    if kind not in RENDERERS:
        raise K8sError(f"--kind {kind!r} is not one of auto, {', '.join(KINDS)}", fix="--kind jobset")
    return RENDERERS[kind](j.validate())


def to_yaml(docs: list[dict]) -> str:
    import yaml

    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=100)

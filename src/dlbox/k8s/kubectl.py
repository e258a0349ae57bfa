"""kubectl, with the user's kubeconfig and context: the only way dlbox reaches a Kubernetes API.

- probe: server version, which job kinds are installed (`kubectl api-resources`), and the GPU
  Feature Discovery labels of the nodes (NVIDIA/k8s-device-plugin docs/gpu-feature-discovery):
  `nvidia.com/cuda.driver.major|minor|rev`, `nvidia.com/gpu.compute.major|minor`,
  `nvidia.com/gpu.product`, `nvidia.com/gpu.count` → the same Host the resolver plans for.
- apply / logs / delete: `kubectl apply -f -`, `kubectl logs -l …`, `kubectl delete -l …`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass

from dlbox.k8s.render import K8sError

MANAGED = "app.kubernetes.io/managed-by=dlbox"
RESOURCES = {"jobset": "jobsets.jobset.x-k8s.io", "trainjob": "trainjobs.trainer.kubeflow.org",
             "pytorchjob": "pytorchjobs.kubeflow.org"}


@dataclass(frozen=True)
class Kubectl:
    context: str | None = None
    namespace: str | None = None

    def argv(self, *args: str) -> list[str]:
        exe = shutil.which("kubectl")
        if not exe:
            raise K8sError("kubectl is not installed here", fix="install kubectl (and a kubeconfig for your cluster)")
        out = [exe]
        if self.context:
            out += ["--context", self.context]
        if self.namespace:
            out += ["--namespace", self.namespace]
        return out + list(args)

    def run(self, *args: str, input: bytes | None = None, what: str = "kubectl", timeout: float = 120) -> str:
        try:
            proc = subprocess.run(self.argv(*args), input=input, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise K8sError(f"{what} did not answer within {timeout:.0f} s", fix="kubectl cluster-info") from None
        if proc.returncode != 0:
            err = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
            raise K8sError(f"{what} failed: {err[-1] if err else f'exit status {proc.returncode}'}",
                           fix="check `kubectl cluster-info` with the same --context")
        return proc.stdout.decode(errors="replace")


@dataclass(frozen=True)
class K8sFacts:
    server_version: str
    kinds: tuple[str, ...]           # job kinds dlbox can render that the cluster serves
    nodes: tuple[dict, ...]          # {name, driver, compute_caps, product, count}

    def pick_kind(self) -> str:
        for kind in ("jobset", "trainjob", "pytorchjob"):
            if kind in self.kinds:
                return kind
        return "job"


def parse_api_resources(text: str) -> tuple[str, ...]:
    """`kubectl api-resources -o name` → the kinds among jobset/trainjob/pytorchjob (+ job)."""
    names = set(text.split())
    return ("job",) + tuple(k for k, r in RESOURCES.items() if r in names)


def parse_gfd_nodes(nodes_json: str) -> tuple[dict, ...]:
    """`kubectl get nodes -o json` → the GPU facts GFD put on each node's labels."""
    out = []
    for item in json.loads(nodes_json).get("items", []):
        lab = item.get("metadata", {}).get("labels", {})
        major = lab.get("nvidia.com/cuda.driver.major") or lab.get("nvidia.com/cuda.driver-version.major")
        if not major:
            continue
        minor = lab.get("nvidia.com/cuda.driver.minor") or lab.get("nvidia.com/cuda.driver-version.minor", "")
        rev = lab.get("nvidia.com/cuda.driver.rev") or lab.get("nvidia.com/cuda.driver-version.revision", "")
        driver = ".".join(x for x in (major, minor, rev) if x)
        cc = None
        if lab.get("nvidia.com/gpu.compute.major"):
            cc = f"{lab['nvidia.com/gpu.compute.major']}.{lab.get('nvidia.com/gpu.compute.minor', '0')}"
        out.append({"name": item["metadata"]["name"], "driver": driver, "compute_cap": cc,
                    "product": lab.get("nvidia.com/gpu.product", ""), "count": int(lab.get("nvidia.com/gpu.count", "0") or 0)})
    return tuple(out)


def host_from_gfd(nodes: tuple[dict, ...]):
    """The lowest driver and every compute capability of the GPU nodes → a Host for the resolver."""
    from packaging.version import Version

    from dlbox.host import EngineFacts, Host
    from dlbox.host.nvidia_smi import DriverFacts, Gpu, cuda_max_for_driver

    if not nodes:
        return Host(engine=EngineFacts(runtimes=("runc",)), server="kubernetes (no GPU node labels)")
    low = min(nodes, key=lambda n: Version(n["driver"]))
    gpus = tuple(Gpu(i, n["product"] or n["name"], n["compute_cap"], None) for i, n in enumerate(nodes))
    facts = DriverFacts(low["driver"], cuda_max_for_driver(low["driver"]), gpus,
                        source=f"GFD labels of {len(nodes)} GPU node(s), lowest driver on {low['name']}")
    return Host(driver=facts, engine=EngineFacts(runtimes=("nvidia", "runc")), server="kubernetes")


def probe(k: Kubectl) -> K8sFacts:
    version = json.loads(k.run("version", "-o", "json", what="kubectl version")).get("serverVersion", {})
    kinds = parse_api_resources(k.run("api-resources", "-o", "name", what="kubectl api-resources"))
    nodes = parse_gfd_nodes(k.run("get", "nodes", "-o", "json", what="kubectl get nodes"))
    return K8sFacts(version.get("gitVersion", ""), kinds, nodes)


def apply(k: Kubectl, yaml_text: str) -> str:
    return k.run("apply", "-f", "-", input=yaml_text.encode(), what="kubectl apply")


def logs(k: Kubectl, name: str, *, follow: bool = False, tail: int = 200) -> subprocess.Popen:
    argv = k.argv("logs", "-l", f"app.kubernetes.io/name={name}", "--all-containers", "--prefix",
                  "--max-log-requests=64", f"--tail={tail}") + (["-f"] if follow else [])
    return subprocess.Popen(argv)


def delete(k: Kubectl, name: str, kinds: tuple[str, ...]) -> str:
    types = ",".join(["jobs.batch", "services"] + [RESOURCES[x] for x in kinds if x in RESOURCES])
    return k.run("delete", types, "-l", f"{MANAGED},app.kubernetes.io/name={name}", "--ignore-not-found",
                 what="kubectl delete")

"""The image onto the nodes, without a registry unless the user names one.

- pyxis, Apptainer, Slurm OCI: one squashfs per image ID on the shared directory
  (`<shared>/images/<id>.sqsh`), made here once (docker export → rootfs → mksquashfs, with the
  image's ENV as /etc/environment for enroot, /.singularity.d/env for Apptainer and
  /.dlbox/env.sh for dlbox's own launcher) and skipped when the cluster already has it.
- Docker/Podman nodes: the missing-layer deploy (`dlbox.ship.deploy`) to every node over ssh;
  a node that already has the layers costs one short probe.
- A registry (`dlbox cluster add … --registry HOST[:PORT]`): pushed once, pulled by each node.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dlbox.cluster.config import Cluster, ClusterError
from dlbox.cluster.login import Login, dq, last_line
from dlbox.cluster.runtime import ENV_FILE
from dlbox.engine.docker import Docker
from dlbox.engine.paths import cache_dir

Say = Callable[[str], None]
SQUASH_RUNTIMES = ("pyxis", "apptainer", "oci")


@dataclass
class Shipped:
    ref: str                 # what the job names: a docker ref or the squashfs path
    image_id: str
    seconds: float = 0.0
    made: bool = False       # a squashfs was made here
    copied: bool = False     # ... and copied to the cluster
    nodes: dict[str, str] = field(default_factory=dict)   # node → "present" / "sent N MB"


def image_id(docker: Docker, ref: str) -> str:
    proc = docker.run(["image", "inspect", "-f", "{{.Id}}", ref], check=False, timeout=60)
    if proc.returncode != 0:
        raise ClusterError(f"image {ref} is not in the local engine", fix="dlbox build")
    return proc.stdout.decode().strip()


def env_files(env: list[str]) -> dict[str, bytes]:
    """The image's ENV for each squashfs runtime."""
    pairs = [e.split("=", 1) for e in env if "=" in e]
    sh = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in pairs)
    return {"etc/environment": "".join(f"{k}={v}\n" for k, v in pairs).encode(),
            ".singularity.d/env/90-environment.sh": sh.encode(),
            ENV_FILE.lstrip("/"): sh.encode()}


def make_squashfs(docker: Docker, ref: str, *, say: Say) -> Path:
    """`<cache>/sqsh/<id>.sqsh`, made once per image ID."""
    if not shutil.which("mksquashfs"):
        raise ClusterError("mksquashfs is not installed here (needed to pack the image for the cluster)",
                           fix="sudo apt-get install squashfs-tools")
    iid = image_id(docker, ref)
    out = cache_dir("sqsh") / f"{iid.split(':')[-1][:16]}.sqsh"
    if out.exists():
        return out
    t0 = time.time()
    env = docker.run(["image", "inspect", "-f", "{{json .Config.Env}}", ref], timeout=60).stdout.decode()
    import json

    cid = docker.run(["create", ref, "true"], timeout=120).stdout.decode().strip()
    with tempfile.TemporaryDirectory(prefix="dlbox-rootfs-", dir=out.parent) as tmp:
        root = Path(tmp) / "rootfs"
        root.mkdir()
        try:
            export = docker.popen(["export", cid], stdout=subprocess.PIPE)
            tar = subprocess.run(["tar", "-x", "-C", str(root), "--no-same-owner" if os.getuid() else "--same-owner"],
                                 stdin=export.stdout, capture_output=True)
            export.wait()
            if export.returncode or tar.returncode:
                raise ClusterError(f"docker export {ref} failed: {last_line(tar.stderr)}", fix="df -h (free space)")
        finally:
            docker.run(["rm", "-f", cid], check=False, timeout=60)
        for rel, data in env_files(json.loads(env) or []).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        part = out.with_suffix(".part")
        proc = subprocess.run(["mksquashfs", str(root), str(part), "-comp", "zstd", "-Xcompression-level", "3",
                               "-noappend", "-quiet", "-no-progress"], capture_output=True)
        if proc.returncode:
            raise ClusterError(f"mksquashfs failed: {last_line(proc.stderr)}", fix="df -h (free space)")
        os.replace(part, out)
    say(f"packed {ref} as {out.name} ({out.stat().st_size / 1e6:.0f} MB) in {time.time() - t0:.1f} s")
    return out


def ship_squashfs(cluster: Cluster, docker: Docker, ref: str, shared_dir: str, *, say: Say) -> Shipped:
    t0 = time.time()
    login = Login(cluster)
    iid = image_id(docker, ref)
    remote = f"{shared_dir}/images/{iid.split(':')[-1][:16]}.sqsh"
    result = Shipped(ref=remote, image_id=iid)
    if login.sh(f"test -s {dq(remote)}", what="test").returncode == 0:
        say(f"{remote} is already on {cluster.name}")
    else:
        local = make_squashfs(docker, ref, say=say)
        result.made = True
        with open(local, "rb") as f:
            login.stream_to(remote, f)
        result.copied = True
        say(f"copied {local.name} to {cluster.name}:{remote}")
    result.seconds = time.time() - t0
    return result


def ship_to_nodes(cluster: Cluster, docker: Docker, ref: str, nodes: list[str], *, say: Say,
                  deploy: Callable) -> Shipped:
    """The missing layers to every node's engine (ssh to each node, as the login user).
    DEPLOY is `dlbox.ship.deploy.deploy`, handed in by the caller (ship sits beside cluster)."""
    t0 = time.time()
    result = Shipped(ref=ref, image_id=image_id(docker, ref))
    user = None if cluster.is_local else (cluster.login.split("@")[0] if "@" in cluster.login else None)
    for node in nodes:
        target = f"{user}@{node}" if user else node
        if node_has(target, ref, result.image_id):
            result.nodes[node] = "present"
            continue
        try:
            r = deploy(docker, ref, target, say=lambda m, n=node: say(f"{n}: {m}"))
        except ClusterError:
            raise
        except Exception as exc:  # a DlboxError from deploy: name the node
            msg = getattr(exc, "message", str(exc))
            raise ClusterError(f"node {node}: {msg}", fix=getattr(exc, "fix", None)) from None
        result.nodes[node] = "present" if r.already_there else f"sent {r.bytes_sent / 1e6:.1f} MB"
    result.seconds = time.time() - t0
    return result


def node_has(target: str, ref: str, iid: str) -> bool:
    """One short ssh: the node's engine already has REF as this very image (deploy's own probe lists
    every layer of every image there, which costs seconds per node on a busy engine)."""
    from dlbox import ssh

    try:
        proc = ssh.run(ssh.Target.parse(target), f"docker image inspect -f '{{{{.Id}}}}' {shlex.quote(ref)}",
                       timeout=60, what="docker image inspect")
    except Exception:  # noqa: BLE001 - unreachable here: deploy says why, naming the node
        return False
    return proc.returncode == 0 and proc.stdout.decode().strip() == iid


def ship(cluster: Cluster, docker: Docker, ref: str, runtime: str, *, shared_dir: str, nodes: list[str],
         say: Say, deploy: Callable | None = None) -> Shipped:
    if cluster.registry and runtime in ("docker", "podman"):
        return push_to_registry(docker, ref, cluster.registry, say=say)
    if runtime in SQUASH_RUNTIMES:
        return ship_squashfs(cluster, docker, ref, shared_dir, say=say)
    if runtime == "podman":
        # deploy's partial tar relies on `docker load` skipping layers it has (moby tarexport);
        # podman load needs every layer, so podman nodes pull from a registry
        raise ClusterError(f"cluster {cluster.name} runs Podman on its nodes: dlbox ships to them through a registry",
                           fix=f"dlbox cluster add {cluster.name} ... --registry HOST[:PORT] (or --runtime apptainer/oci if present)")
    if deploy is None:
        raise ClusterError(f"no way to send {ref} to the nodes' engines", fix="use dlbox cluster push")
    return ship_to_nodes(cluster, docker, ref, nodes, say=say, deploy=deploy)


def push_to_registry(docker: Docker, ref: str, registry: str, *, say: Say) -> Shipped:
    t0 = time.time()
    remote = f"{registry.rstrip('/')}/{ref}"
    docker.run(["tag", ref, remote], timeout=60)
    proc = docker.run(["push", remote], check=False, timeout=3600)
    if proc.returncode:
        raise ClusterError(f"docker push {remote} failed: {last_line(proc.stderr)}",
                           fix=f"check that {registry} answers and that you are logged in (docker login {registry})")
    say(f"pushed {remote}")
    return Shipped(ref=remote, image_id=image_id(docker, ref), seconds=time.time() - t0)


def code_tar(project_dir: Path) -> bytes:
    """The project's code (not .git, .dlbox, outputs, caches) as a tar for the run directory."""
    skip = {".git", ".dlbox", "outputs", "__pycache__", ".venv", "node_modules", ".mypy_cache", ".pytest_cache"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(project_dir.rglob("*")):
            rel = path.relative_to(project_dir)
            if any(part in skip for part in rel.parts) or not (path.is_file() or path.is_dir()) or path.is_symlink():
                continue
            tar.add(path, arcname=str(rel), recursive=False)
    return buf.getvalue()


def ship_code(cluster: Cluster, project_dir: Path, run_dir: str) -> None:
    """Copy the code to RUN_DIR on the shared directory (the job's /workspace)."""
    Login(cluster).check(f"mkdir -p {dq(run_dir)} && tar -x -C {dq(run_dir)}", input=code_tar(project_dir),
                         what="copying the project's code")

"""`dlbox snapshot`: `docker commit` of the project's running container, labelled with its origin.

A commit captures whatever was typed into the container; nobody can rebuild it. It is
supported because the tutorials use it (save work before a server is reclaimed), with a
warning that the Dockerfile (`dlbox build`) is the reproducible way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from dlbox.engine.docker import Docker
from dlbox.errors import HostError

WARNING = ("a snapshot records what was done by hand inside the container and cannot be rebuilt; "
           "put those steps in dlbox.toml (apt/pip) so `dlbox build` makes the same image reproducibly")


@dataclass(frozen=True)
class SnapshotResult:
    container: str
    image: str
    tag: str
    id: str
    labels: dict


def snapshot_labels(container: str, state: dict, now: datetime) -> dict[str, str]:
    cfg = state.get("Config") or {}
    return {
        "org.dlbox.snapshot": "true",
        "org.dlbox.snapshot.container": container,
        "org.dlbox.snapshot.container_id": state.get("Id", ""),
        "org.dlbox.snapshot.image": cfg.get("Image", ""),
        "org.dlbox.snapshot.image_id": state.get("Image", ""),
        "org.dlbox.snapshot.created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def commit_argv(container: str, tag: str, labels: dict[str, str], message: str) -> list[str]:
    # --change LABEL adds to the image's labels (the container's own are kept)
    argv = ["commit", "--message", message]
    for k, v in sorted(labels.items()):
        argv += ["--change", f'LABEL {k}="{v}"']
    return argv + [container, tag]


def default_tag(project: str, now: datetime) -> str:
    return f"dlbox/{project}:snapshot-{now.strftime('%Y%m%d-%H%M%S')}"


def snapshot(docker: Docker, container: str, tag: str) -> SnapshotResult:
    state = docker.inspect("container", container)
    if state is None or not (state.get("State") or {}).get("Running"):
        raise HostError(f"No running container '{container}' to snapshot.", fix="dlbox up -d   (then work in it)")
    now = datetime.now(timezone.utc)
    labels = snapshot_labels(container, state, now)
    proc = docker.run(commit_argv(container, tag, labels, f"dlbox snapshot of {container}"), timeout=1800,
                      what="docker commit")
    image_id = proc.stdout.decode().strip()
    return SnapshotResult(container, (state.get("Config") or {}).get("Image", ""), tag, image_id, labels)



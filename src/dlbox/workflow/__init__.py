"""The verbs' work, in order: load the spec, observe the host, plan (here), get the image and
run it (`workflow.containers`), check it (`workflow.verify`).

Each function returns a result; `dlbox.commands` prints it. This module imports nothing of the
engine at module level: `dlbox plan` never pays for the build and run machinery.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from dlbox.errors import HostError
from dlbox.host import Host
from dlbox.host.observe import observe
from dlbox.host.sysroot import SysRoot
from dlbox.plan import find_links_dirs, resolve
from dlbox.plan.model import Overrides, Plan
from dlbox.spec import Spec, load_spec
from dlbox.spec.declared import Declared, read_declared

if TYPE_CHECKING:
    from dlbox.engine.docker import Docker
    from dlbox.engine.images import Availability

Say = Callable[[str], None]


def _on_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


@dataclass
class Project:
    spec: Spec
    host: Host
    plan: Plan
    docker: Docker | None
    availability: Availability | None = None
    declared: Declared | None = None

    @property
    def spec_file(self) -> str:
        return self.spec.file.name if self.spec.file else "dlbox.toml"


def observe_for(spec: Spec, docker: Docker | None, root: SysRoot | None = None) -> Host:
    """This host (or the saved one under ROOT), with local wheels scanned in exactly the
    find_links directories the build will mount ("none" → none), so the plan never picks a
    wheel the build cannot see. With `docker`, its engine's `docker info` counts."""
    dirs = None if spec.env.find_links == "auto" else find_links_dirs(spec, Host())
    host = observe(root, engine_info=docker.info() if docker is not None else None, find_links=dirs)
    if host.uid == 0:
        from dlbox.engine.paths import project_owner

        # `sudo dlbox …` in a user's project: containers run as the project's owner, so nothing
        # in them is root and what they write stays the owner's.
        uid, gid = project_owner(spec.project_dir)
        if uid != 0:
            host = replace(host, uid=uid, gid=gid)
    return host


def load_project(path: str | Path = ".", *, docker: Docker | None = None, overrides: Overrides = Overrides(),
                 host: Host | None = None, check_images: bool = False, say: Say = _stderr) -> Project:
    """Spec → Host → Plan. With `docker`, engine facts count; with `check_images` too, whether
    the preferred base image can be had (local or pulled now) decides between it and the fallback.
    What the project declares (requirements, pyproject, …) is read here and is a plan input."""
    spec = load_spec(path)
    declared = read_declared(spec.project_dir, requirements=spec.env.requirements)
    if host is None:
        host = observe_for(spec, docker)
    availability = None
    if docker is not None and check_images:
        from dlbox.engine.images import Availability

        availability = Availability(docker, say=say)
    plan = resolve(spec, host, overrides=overrides, image_available=availability, declared=declared)
    return Project(spec, host, plan, docker, availability, declared)


def ensure_lock(p: Project, *, force: bool = False, say: Say = _stderr):
    """The plan's lock file, made when missing or stale (its inputs changed), then attached to
    the plan so the build installs exactly it. Returns engine.lockfile.LockResult."""
    from dlbox.engine.lockfile import lock
    from dlbox.plan.lock import LockRef, wheel_excludes

    result = lock(p.plan, p.declared, project_dir=p.spec.project_dir, local_wheels=p.host.local_wheels,
                  force=force, say=say)
    if result.wrote:
        say(f"locked {len(result.locked.pins)} packages into {result.path.name} in {result.seconds:.1f} s")
    for line in result.said:
        say(line)
    source = next((s for s in p.plan.build.family_sources if s.kind == result.locked.source), None)
    ref = LockRef.of(result.locked, excludes=wheel_excludes(p.host.local_wheels, source))
    p.plan = replace(p.plan, build=replace(p.plan.build, locked=ref))
    return result


def observe_server(target: str) -> tuple[Host, Docker]:
    """The server's facts over SSH and its engine."""
    from dlbox.engine.remote import remote_docker
    from dlbox.host import remote as host_remote

    docker = remote_docker(target)
    return host_remote.observe_server(target, docker.info()), docker


def plan_host(spec: Spec, *, server: str | None = None, root: Path | None = None,
              engine: bool = False) -> Host:
    """The host `dlbox plan` plans for: a server over SSH, a saved root (replayed like
    `doctor --root DIR`), or this machine (with its engine's facts when `engine`)."""
    if server:
        return observe_server(server)[0]
    if root is not None:
        if not root.is_dir():
            raise HostError(f"--root {root} is not a directory",
                            fix="give the directory that holds the host's etc/, proc/ and .dlbox/commands/")
        return observe_for(spec, None, SysRoot(root))
    if not engine:
        return observe_for(spec, None)
    from dlbox.engine.docker import Docker

    return observe_for(spec, Docker())


def load_server_project(path: str | Path, target: str, *, overrides: Overrides = Overrides()) -> Project:
    """Plan the project for a server: its driver, its limits, its user; code baked in the image."""
    spec = load_spec(path)
    declared = read_declared(spec.project_dir, requirements=spec.env.requirements)
    host, docker = observe_server(target)
    plan = resolve(spec, host, overrides=overrides, declared=declared)
    return Project(spec, host, plan, docker, declared=declared)

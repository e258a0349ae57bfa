"""Get the project's image and run it: build or bake under the project lock, the long-running
container, one-off runs, exec and down."""

from __future__ import annotations

from typing import Callable

from dlbox.engine.build import BuildResult, bake, build
from dlbox.engine.images import Availability, ensure_base
from dlbox.engine.lock import project_lock
from dlbox.engine.run import (
    ExecOptions,
    RunOptions,
    ca_for,
    check_mounts,
    check_ports,
    container_state,
    exec_argv,
    interactive,
    proxy_files,
    remove_container,
    run_argv,
    run_env,
    run_fingerprint,
    start_detached,
)
from dlbox.engine.secrets import container_files, one_off_key, remove_container_files
from dlbox.errors import HostError
from dlbox.plan.layout import LABEL_RUN, container_name
from dlbox.workflow import Project, Say, _on_terminal, _stderr, ensure_lock


def server_image(p: Project) -> str:
    """The image `dlbox deploy` put on the server."""
    from dlbox.plan.layout import image_name

    image = f"{image_name(p.plan)}:baked"
    if not p.docker.image_exists(image):
        raise HostError(f"{image} is not on {p.host.server}", fix=f"dlbox deploy {p.spec.project_dir} {p.host.server}")
    return image


def ensure_image(p: Project, *, force: bool = False, quiet: bool = False, say: Say = _stderr) -> BuildResult:
    assert p.docker is not None
    with project_lock(p.spec.project_dir, "build", say=say):
        if p.plan.build.locked is None:
            ensure_lock(p, say=say)
        ensure_base(p.docker, p.plan.build.base_image, p.availability or Availability(p.docker, say=say),
                    mirror=p.plan.build.apt_mirror, say=say)
        return build(p.docker, p.plan,
                     quiet=quiet, force=force)


def bake_image(p: Project, env_image: str, *, quiet: bool = False) -> BuildResult:
    import subprocess

    rev = subprocess.run(["git", "-C", str(p.spec.project_dir), "rev-parse", "HEAD"], capture_output=True, text=True)
    labels = {"org.dlbox.baked": "true", "org.dlbox.env_image": env_image}
    if rev.returncode == 0:
        labels["org.opencontainers.image.revision"] = rev.stdout.strip()
    with project_lock(p.spec.project_dir, "build --bake", say=_stderr):
        return bake(p.docker, p.plan, env_image=env_image, project_dir=p.spec.project_dir, labels=labels,
                    quiet=quiet)


def run_files(p: Project, key: str) -> dict:
    """RunOptions fields for the container KEY: its env file (the docker client reads it, so it
    serves a server's engine too) and, on this machine's engine, its secrets dir. A server's
    engine cannot mount this machine's files: secrets are refused there, not sent another way."""
    if p.host.server is not None and p.plan.run.secrets:
        raise HostError(f"[run] secrets are delivered as files on this machine's engine, not on {p.host.server}",
                        fix="run it here (dlbox up without --host), or keep the secret in a file on the server")
    secrets_dir, env_file = container_files(p.plan, key, proxy=proxy_files(p.plan) if p.host.server is None else {})
    if p.host.server is not None:
        return {"env_file": str(env_file)}
    return {"secrets_dir": str(secrets_dir), "env_file": str(env_file)}


def _differs(state: dict, image: str, run_hash: str) -> str | None:
    if state["image"] != image:
        return f"the environment changed (image {state['image']} → {image})"
    if state.get("run") != run_hash:
        bound = ", ".join(f"{b['ip']}:{b['port']}" for b in state.get("bound", [])) or "no ports"
        return f"the run options changed (ports, --public, env, mounts, GPUs or secrets; it binds {bound})"
    return None


def ensure_container(p: Project, image: str, *, public: bool = False, recreate: bool = False,
                     confirm: Callable[[str], bool] | None = None, say: Say = _stderr) -> tuple[str, bool]:
    """The project's long-running container, created when missing. A running one started from
    another image or with other run options is recreated only with RECREATE or when CONFIRM
    (asked on a terminal) says yes; otherwise a HostError says what differs and what to do.
    Under the project lock: a second `dlbox up` at once finds this one running, never removes it."""
    with project_lock(p.spec.project_dir, "up", say=say):
        return _ensure_container(p, image, public=public, recreate=recreate, confirm=confirm, say=say)


def _ensure_container(p: Project, image: str, *, public: bool, recreate: bool,
                      confirm: Callable[[str], bool] | None, say: Say) -> tuple[str, bool]:
    name = container_name(p.plan)
    command = p.plan.run.long_running_command
    run_hash = run_fingerprint(p.plan, public=public, command=command)
    state = container_state(p.docker, name)
    if state and state["running"]:
        why = _differs(state, image, run_hash)
        if why is None:
            return name, False
        if not recreate and not (confirm and confirm(f"{name} is running, but {why}: stop it and start a new one?")):
            raise HostError(f"{name} is running, but {why}; it was left as it is",
                            fix="dlbox up --recreate   (stops what runs in it), or dlbox down first")
        say(f"{why}: recreating {name}")
    if state:
        remove_container(p.docker, name, timeout=60, check=True)
    if p.host.server is None:     # local pre-flight; a server's engine reports its own conflicts
        check_mounts(p.plan)
        check_ports(p.docker, p.plan.run.ports)
    opts = RunOptions(image=image, command=command, name=name, detach=True, remove=False, public=public,
                      ca_bundle=None if p.host.server else ca_for(p.plan),
                      extra_labels=((LABEL_RUN, run_hash),), **run_files(p, name))
    try:
        start_detached(p.docker, p.plan, opts)
    except BaseException:
        remove_container_files(name)
        raise
    return name, True


def bound_addresses(p: Project) -> list[dict]:
    """What the project's container actually binds: [{ip, port, container}]."""
    state = container_state(p.docker, container_name(p.plan))
    return state["bound"] if state else []


def exec_in(p: Project, command: tuple[str, ...], *, tty: bool | None = None) -> int:
    name = container_name(p.plan)
    state = container_state(p.docker, name)
    if not state or not state["running"]:
        raise HostError(f"no running container for {p.plan.project}", fix="dlbox up")
    tty = _on_terminal() if tty is None else tty
    return interactive(p.docker, exec_argv(p.plan, ExecOptions(name, command, tty=tty)), tty=tty)


def run_once(p: Project, image: str, command: tuple[str, ...], *, public: bool = False,
             tty: bool | None = None) -> int:
    tty = _on_terminal() if tty is None else tty
    if p.host.server is None:
        check_mounts(p.plan)
        check_ports(p.docker, p.plan.run.ports)
    key = one_off_key(p.plan)
    try:
        opts = RunOptions(image=image, command=command or p.plan.run.command or ("bash",), tty=tty, public=public,
                          ca_bundle=None if p.host.server else ca_for(p.plan), **run_files(p, key))
        return interactive(p.docker, run_argv(p.plan, opts), env=run_env(p.plan), tty=tty)
    finally:
        remove_container_files(key)


def down(p: Project) -> list[str]:
    """Remove the project's containers (the environment and its Jupyter); the names removed."""
    from dlbox.plan.layout import jupyter_name

    removed = []
    with project_lock(p.spec.project_dir, "down", say=_stderr):
        for name in (container_name(p.plan), jupyter_name(p.plan)):
            if container_state(p.docker, name) is not None and remove_container(p.docker, name, check=True):
                removed.append(name)
            remove_container_files(name)
    return removed

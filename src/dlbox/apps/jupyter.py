"""JupyterLab in the project's environment, always behind a token.

Tutorials often start Jupyter with `--NotebookApp.token=` and `-p 8888:8888`: no password,
on every address of the machine. dlbox never does that: a fresh random token each
start, published on 127.0.0.1 unless `--public`.

Contracts:
- The container is named `container_name(plan) + "-jupyter"` (`jupyter_name`), labelled
  `org.dlbox.app=jupyter`, so `dlbox down` can remove it and `dlbox ls` lists it.
- The token reaches the server as JUPYTER_TOKEN (jupyter_server reads it): by name on the
  docker argv, its value only in the client's environment, so it is never in `ps`. A second
  `start_jupyter` reads it back from the running container (`docker inspect`) and returns the
  same URL instead of starting another server.
- The image is the `jupyter` stage of the project's one Dockerfile (`docker build --target
  jupyter`): the environment plus JupyterLab in its own layer, unless the project lists jupyterlab.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Callable

from dlbox.apps.wait import wait_http
from dlbox.engine.build import build
from dlbox.engine.lock import project_lock
from dlbox.engine.run import (
    RunOptions,
    ca_for,
    check_mounts,
    check_ports,
    explain_run_failure,
    is_running,
    last_lines,
    remove_container,
    run_argv,
    run_env,
)
from dlbox.engine.secrets import remove_container_files
from dlbox.errors import HostError
from dlbox.plan.layout import jupyter_name
from dlbox.plan.model import Plan, Port
from dlbox.render.dockerfile import JUPYTER_TARGET, jupyter_args
from dlbox.workflow import Project
from dlbox.workflow.containers import ensure_image, run_files

CONTAINER_PORT = 8888
TOKEN_ENV = "JUPYTER_TOKEN"
LABEL_APP = "org.dlbox.app"

Say = Callable[[str], None]


@dataclass(frozen=True)
class JupyterServer:
    name: str
    url: str           # with the token: what the user opens
    port: int
    public: bool
    started: bool      # False: it was already running
    seconds: float     # from the call to a server that answers


def has_jupyter(p: Project) -> bool:
    """The project's own packages already bring JupyterLab: use the environment image as is."""
    return jupyter_args(p.plan) is None


def url_for(port: int, token: str, path: str = "lab") -> str:
    return f"http://127.0.0.1:{port}/{path}?token={token}"


def jupyter_command(plan: Plan) -> list[str]:
    cmd = ["jupyter", "lab", "--ip=0.0.0.0", f"--port={CONTAINER_PORT}", "--no-browser",
           f"--ServerApp.root_dir={plan.run.workdir}"]
    if plan.run.user.split(":")[0] == "0":
        cmd.append("--allow-root")    # the host user is root, so the container's user is too
    return cmd


def jupyter_image(p: Project, env_image: str, *, quiet: bool = True, say: Say = lambda m: None) -> str:
    """The environment image with JupyterLab: the Dockerfile's Jupyter stage (built once per
    environment, its layers shared), or the environment image itself when the project has it."""
    if has_jupyter(p):
        return env_image
    result = build(p.docker, p.plan, target=JUPYTER_TARGET, quiet=quiet)
    if result.built:
        say(f"added JupyterLab to {env_image} in its own layer ({result.image})")
    return result.image


def running_server(p: Project, info: dict | None = None) -> JupyterServer | None:
    """The project's Jupyter server if one runs, with its URL read back from the container
    (INFO: its `docker inspect`, when the caller has it already)."""
    name = jupyter_name(p.plan)
    info = info or p.docker.inspect("container", name)
    if not info or not info.get("State", {}).get("Running"):
        return None
    env = dict(e.split("=", 1) for e in info.get("Config", {}).get("Env") or [] if "=" in e)
    bindings = (info.get("HostConfig", {}).get("PortBindings") or {}).get(f"{CONTAINER_PORT}/tcp") or [{}]
    token, host_port = env.get(TOKEN_ENV), bindings[0].get("HostPort")
    if not token or not host_port:
        raise HostError(f"container {name} runs but has no Jupyter token or port", fix="dlbox down, then dlbox jupyter")
    public = bindings[0].get("HostIp", "") in ("", "0.0.0.0", "::")
    return JupyterServer(name, url_for(int(host_port), token), int(host_port), public, False, 0.0)


def start_jupyter(p: Project, *, port: int = 8888, public: bool = False, timeout: float = 180,
                  image: str | None = None, recreate: bool = False, say: Say = lambda m: None) -> JupyterServer:
    """Start JupyterLab (or find the running one) and return once it answers HTTP.

    IMAGE is an already-built Jupyter image (the benchmark passes it); by default the
    environment image is built if needed and JupyterLab added to it. Under the project lock:
    two at once start one server."""
    with project_lock(p.spec.project_dir, "jupyter", say=say):
        return _start_jupyter(p, port=port, public=public, timeout=timeout, image=image, recreate=recreate, say=say)


def _start_jupyter(p: Project, *, port: int, public: bool, timeout: float, image: str | None,
                   recreate: bool, say: Say) -> JupyterServer:
    t0 = time.monotonic()
    plan, docker, name = p.plan, p.docker, jupyter_name(p.plan)
    info = docker.inspect("container", name)
    found = running_server(p, info)
    if found and found.public != public:
        where = "every address" if found.public else "127.0.0.1 only"
        if not recreate:
            raise HostError(f"Jupyter already runs in {name}, published on {where} (port {found.port})",
                            fix="dlbox jupyter --recreate" + (" --public" if public else "") + "   (stops it), or dlbox down")
        say(f"Jupyter in {name} was published on {where}: recreating it")
    elif found:
        return found
    if info:
        remove_container(docker, name, timeout=60)      # a stopped one from before
    if image is None:
        image = jupyter_image(p, ensure_image(p, say=say).image, say=say)
    published = Port(port, CONTAINER_PORT)
    check_mounts(plan)
    try:
        check_ports(docker, (published,))
    except HostError as exc:       # same message (who holds the port), Jupyter's own fix
        raise HostError(exc.message, fix=f"stop it, or choose another port: dlbox jupyter --port {port + 1}") from None
    # the project's own [run] ports belong to `dlbox up`: Jupyter publishes only its own
    opts = RunOptions(image=image, command=tuple(jupyter_command(plan)), name=name, detach=True, remove=False,
                      public=public, ca_bundle=ca_for(plan), ports=(published,),
                      extra_labels=((LABEL_APP, "jupyter"),), env_by_name=(TOKEN_ENV,), **run_files(p, name))
    token = secrets.token_hex(24)
    proc = docker.run(run_argv(plan, opts), check=False, env={**run_env(plan), TOKEN_ENV: token}, timeout=600)
    if proc.returncode != 0:
        err = docker.error(proc.stderr.decode(errors="replace"), "docker run (jupyter)")
        remove_container(docker, name, timeout=60)
        remove_container_files(name)
        raise explain_run_failure(err)
    wait_http(f"http://127.0.0.1:{port}/api", timeout=timeout, alive=lambda: is_running(docker, name),
              on_exit=lambda: last_lines(docker, name))
    return JupyterServer(name, url_for(port, token), port, public, True, time.monotonic() - t0)


def stop_jupyter(p: Project) -> bool:
    """Remove the Jupyter container; True when one existed."""
    remove_container_files(jupyter_name(p.plan))
    return remove_container(p.docker, jupyter_name(p.plan))

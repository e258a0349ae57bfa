"""A web app: the project's `[run] command` serving on `[run] ports`, started detached.

`start_web` is what `dlbox serve` and `dlbox up --detach` call: build if needed, start (or
keep) the project's container, wait until the first TCP port answers HTTP or the container
stops (then its last log lines are in the error), and return the URLs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from dlbox.apps.wait import wait_http
from dlbox.engine.run import is_running, last_lines
from dlbox.errors import HostError
from dlbox.workflow import Project
from dlbox.workflow.containers import ensure_container, ensure_image

Say = Callable[[str], None]


@dataclass(frozen=True)
class WebApp:
    name: str
    urls: tuple[str, ...]
    public: bool
    started: bool      # False: the same container was already running
    seconds: float     # from the call to the first port answering


def web_urls(p: Project) -> tuple[str, ...]:
    """Where to open the app from this machine (the container binds 127.0.0.1, or every address
    with --public; `dlbox up` prints what is bound)."""
    return tuple(f"http://127.0.0.1:{port.host_port}/" for port in p.plan.run.ports if port.proto == "tcp")


def start_web(p: Project, *, public: bool = False, timeout: float = 300, image: str | None = None,
              recreate: bool = False, confirm: Callable[[str], bool] | None = None,
              say: Say = lambda m: None) -> WebApp:
    """Start the project's server and wait until it answers. Raises HostError when [run] has no
    command or no TCP port, when a port is taken (naming who holds it), or when the container
    stops or stays silent for TIMEOUT seconds."""
    t0 = time.monotonic()
    urls = web_urls(p)
    if not p.plan.run.command or not urls:
        raise HostError("a web app needs [run] command and [run] ports in dlbox.toml",
                        fix='e.g. command = ["python", "app.py"] and ports = ["7860"]')
    if image is None:
        image = ensure_image(p, say=say).image
    name, created = ensure_container(p, image, public=public, recreate=recreate, confirm=confirm, say=say)
    say(("started " if created else "already running: ") + name + f"; waiting for {urls[0]}")
    wait_http(urls[0], timeout=timeout, alive=lambda: is_running(p.docker, name),
              on_exit=lambda: last_lines(p.docker, name))
    return WebApp(name, urls, public, created, time.monotonic() - t0)

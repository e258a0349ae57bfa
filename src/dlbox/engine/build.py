"""Build the project's image with BuildKit, tagged by a hash of every build input.

An unchanged project is never rebuilt (the tag exists). The tag is only written when the
build succeeds, so an interrupted build leaves nothing that a later `up` could pick up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from dlbox.engine.ca import combined_bundle
from dlbox.engine.context import select_context
from dlbox.engine.docker import Docker, buildkit_client
from dlbox.engine.stage import stage_project
from dlbox.errors import EngineError, HostError
from dlbox.plan import Plan
from dlbox.plan.layout import STAGE, image_name
from dlbox.render.dockerfile import label_value, render_bake

PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


@dataclass(frozen=True)
class BuildResult:
    image: str
    built: bool
    seconds: float
    sent: str = ""                     # what the build context held (bake), for people
    warnings: tuple[str, ...] = ()


def _build_env(plan: Plan) -> dict[str, str]:
    """Proxies reach the build as Docker's predefined build args, taken from this environment:
    not declared with ARG, they stay out of `docker history`; not on the argv, out of `ps`."""
    env = {"DOCKER_BUILDKIT": "1"}
    env.update(plan.build.proxy.env())
    return env


def build_argv(plan: Plan, *, dockerfile: str, tag: str, ca_bundle: Path | None, progress: str,
               context: str) -> list[str]:
    argv = ["build", "-f", dockerfile, "-t", tag, "--progress", progress]
    if plan.build.network_host:
        argv += ["--network", "host"]
    if ca_bundle:
        argv += ["--secret", f"id=dlbox_ca,src={ca_bundle}"]
    for name in plan.build.proxy.env():
        if name in PROXY_ARGS:
            argv += ["--build-arg", name]
    return argv + [context]


def run_build(docker: Docker, argv: list[str], env: dict[str, str], *, quiet: bool,
              context_tar: Callable[[BinaryIO], None] | None = None) -> None:
    """Run `docker build`; `context_tar` writes the context as a tar to its stdin (argv ends in "-")."""
    binary = buildkit_client(docker.binary)
    if binary is None:
        raise HostError(
            "no docker client here can build with BuildKit (docker >= 23 needs the buildx plugin)",
            fix="sudo apt-get install docker-buildx-plugin (Docker's repo) or docker-buildx, or use Debian's docker.io client",
        )
    client = Docker(host=docker.host, binary=binary)
    out = subprocess.PIPE if quiet else None
    feeder, stdin = None, None
    if context_tar is not None:
        read_end, write_end = os.pipe()
        stdin = read_end
    proc = client.popen(argv, env=env, stdout=out, stderr=subprocess.PIPE if quiet else None,
                        start_new_session=True, stdin=stdin)
    if context_tar is not None:
        os.close(read_end)
        feeder = threading.Thread(target=_feed, args=(context_tar, write_end), daemon=True)
        feeder.start()
    try:
        stdout, stderr = proc.communicate()
        if feeder is not None:
            feeder.join()
    except KeyboardInterrupt:
        # Stop the whole build (client and its session); the tag is only set on success.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    if proc.returncode != 0:
        text = (stderr or b"").decode(errors="replace")
        raise EngineError("docker build failed" + (f": {text.strip().splitlines()[-1]}" if text.strip() else
                                                   " (see the output above)"), detail=text)


def _feed(write: Callable[[BinaryIO], None], fd: int) -> None:
    try:
        with os.fdopen(fd, "wb") as pipe:
            write(pipe)
    except (BrokenPipeError, OSError):
        pass  # the build ended early; its own error says why


def build(docker: Docker, plan: Plan, *, progress: str | None = None, quiet: bool = False,
          force: bool = False) -> BuildResult:
    """Stage, then build `dlbox/<project>:<hash>` unless it already exists."""
    t0 = time.monotonic()
    staged = stage_project(plan)
    tag = f"{image_name(plan)}:{staged.fingerprint[:12]}"
    if not force and docker.image_exists(tag):
        return BuildResult(tag, False, time.monotonic() - t0)
    ca = combined_bundle(plan.build.ca_files)
    progress = progress or ("tty" if sys.stderr.isatty() and not quiet else "plain")
    argv = build_argv(plan, dockerfile=str(staged.dockerfile), tag=tag, ca_bundle=ca, progress=progress,
                      context=plan.project_dir)
    run_build(docker, argv, _build_env(plan), quiet=quiet)
    return BuildResult(tag, True, time.monotonic() - t0)


def bake(docker: Docker, plan: Plan, *, env_image: str, project_dir: Path, labels: dict[str, str],
         quiet: bool = False) -> BuildResult:
    """The environment image plus the project's code in /workspace: a self-contained image.

    The context is exactly `select_context(project_dir)` (.gitignore, .dockerignore, no secrets),
    sent as a tar on stdin, so nothing else in the directory can reach the image. (BuildKit does not
    apply a .dockerignore inside a stdin tar: the generated Dockerfile lands in /workspace/.dlbox.)"""
    t0 = time.monotonic()
    context = select_context(project_dir)
    extra = [(k, label_value(v)) for k, v in sorted(labels.items())]
    dockerfile = render_bake(plan, env_image=env_image, owner="0:0", extra_labels=extra).encode()
    (project_dir / STAGE).mkdir(exist_ok=True)
    (project_dir / STAGE / "Dockerfile.bake").write_bytes(dockerfile)   # to read; the build uses the tar's copy
    tag = f"{image_name(plan)}:baked"
    inner = f"{STAGE}/Dockerfile.bake"
    argv = ["build", "-f", inner, "-t", tag, "--progress", "plain", "-"]
    run_build(docker, argv, {"DOCKER_BUILDKIT": "1"}, quiet=quiet,
              context_tar=lambda pipe: context.write_tar(pipe, {inner: dockerfile}))
    return BuildResult(tag, True, time.monotonic() - t0, sent=context.summary(), warnings=tuple(context.warnings()))

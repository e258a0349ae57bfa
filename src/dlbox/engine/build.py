"""Build the project's image with BuildKit, tagged by a hash of every build input.

An unchanged project is never rebuilt (the tag exists). The tag is only written by dlbox, after
the build succeeded (see run_build), so an interrupted or orphaned build leaves nothing that a
later `up` could pick up.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from dlbox.engine.ca import combined_bundle
from dlbox.engine.context import select_context
from dlbox.engine.docker import Docker, buildkit_client
from dlbox.engine.paths import give_to_owner, private_dir
from dlbox.engine.secrets import build_secret_args
from dlbox.engine.stage import stage_project
from dlbox.engine.tools import ensure_tools
from dlbox.errors import EngineError, HostError, Terminated
from dlbox.plan.layout import STAGE, image_name
from dlbox.plan.model import Plan
from dlbox.render.dockerfile import label_value, render_bake
from dlbox.render.python_install import REFUSAL_PREFIX

PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


@dataclass(frozen=True)
class BuildResult:
    image: str
    built: bool
    seconds: float
    sent: str = ""                     # what the build context held (bake), for people
    warnings: tuple[str, ...] = ()
    context_bytes: int | None = None   # what the build sent the engine (known when its output was captured)


_CONTEXT = re.compile(r"^#(\d+) transferring context: ([0-9.]+)([kMG]?B)", re.M)
_UNIT = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def context_bytes(progress: str) -> int:
    """Bytes of build context BuildKit received, from its plain progress output (last figure per step)."""
    last: dict[str, int] = {}
    for m in _CONTEXT.finditer(progress):
        last[m[1]] = int(float(m[2]) * _UNIT[m[3]])
    return sum(last.values())


def _build_env(plan: Plan) -> dict[str, str]:
    """Proxies reach the build as Docker's predefined build args, taken from this environment:
    not declared with ARG, they stay out of `docker history`; not on the argv, out of `ps`."""
    env = {"DOCKER_BUILDKIT": "1"}
    env.update(plan.build.proxy.env())
    return env


def build_argv(plan: Plan, *, dockerfile: str, tag: str, ca_bundle: Path | None, progress: str,
               context: str, target: str | None = None, secret_args: list[str] = ()) -> list[str]:
    """SECRET_ARGS: `--secret id=…,src=FILE` pairs from `engine.secrets.build_secret_args`."""
    argv = ["build", "-f", dockerfile, "-t", tag, "--progress", progress]
    if target:
        argv += ["--target", target]
    if plan.build.network_host:
        argv += ["--network", "host"]
    if ca_bundle:
        argv += ["--secret", f"id=dlbox_ca,src={ca_bundle}"]
    argv += list(secret_args)
    for name in plan.build.proxy.env():
        if name in PROXY_ARGS:
            argv += ["--build-arg", name]
    return argv + [context]


def _die_with_parent() -> None:
    """In the child before exec: a new session (Ctrl-C reaches dlbox, which stops the build),
    and SIGTERM from the kernel when dlbox dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def split_tags(argv: list[str]) -> tuple[list[str], list[str]]:
    """(argv without its `-t TAG`s, the tags)."""
    rest, tags, i = [], [], 0
    while i < len(argv):
        if argv[i] in ("-t", "--tag") and i + 1 < len(argv):
            tags.append(argv[i + 1])
            i += 2
            continue
        rest.append(argv[i])
        i += 1
    return rest, tags


def run_build(docker: Docker, argv: list[str], env: dict[str, str], *, quiet: bool,
              context_tar: Callable[[BinaryIO], None] | None = None, progress_out: list[str] | None = None) -> str:
    """Run `docker build`; `context_tar` writes the context as a tar to its stdin (argv ends in "-").

    The build writes an image ID (`--iidfile`), never a tag: dlbox puts the argv's `-t` tags on
    that ID itself once the build succeeded. A build whose dlbox died (SIGKILL included) can
    therefore never tag an image that a later `up` would trust. SIGINT/SIGTERM/SIGHUP stop the
    client and its session (cli.main turns SIGTERM/SIGHUP into `Terminated`). Returns the ID;
    PROGRESS_OUT gets the build's output when QUIET captured it (context_bytes reads it)."""
    binary = buildkit_client(docker.binary)
    if binary is None:
        raise HostError(
            "no docker client here can build with BuildKit (docker >= 23 needs the buildx plugin)",
            fix="sudo apt-get install docker-buildx-plugin (Docker's repo) or docker-buildx, or use Debian's docker.io client",
        )
    client = Docker(host=docker.host, binary=binary)
    argv, tags = split_tags(argv)
    fd, iidfile = tempfile.mkstemp(prefix="iid-", dir=private_dir("build"))
    os.close(fd)
    argv = argv[:1] + ["--iidfile", iidfile] + argv[1:]
    try:
        text = _run_client(client, argv, env, quiet=quiet, context_tar=context_tar)
        if progress_out is not None:
            progress_out.append(text)
        image_id = Path(iidfile).read_text().strip()
    finally:
        Path(iidfile).unlink(missing_ok=True)
    if not image_id.startswith("sha256:"):
        raise EngineError(f"docker build succeeded but wrote no image ID ({image_id or 'empty'})")
    for tag in tags:
        docker.run(["tag", image_id, tag], timeout=60, what="docker tag")
    return image_id


def _run_client(client: Docker, argv: list[str], env: dict[str, str], *, quiet: bool,
                context_tar: Callable[[BinaryIO], None] | None) -> str:
    out = subprocess.PIPE if quiet else None
    feeder, stdin = None, None
    if context_tar is not None:
        read_end, write_end = os.pipe()
        stdin = read_end
    proc = client.popen(argv, env=env, stdout=out, stderr=subprocess.PIPE if quiet else None,
                        preexec_fn=_die_with_parent, stdin=stdin)
    if context_tar is not None:
        os.close(read_end)
        feeder = threading.Thread(target=_feed, args=(context_tar, write_end), daemon=True)
        feeder.start()
    try:
        stdout, stderr = proc.communicate()
        if feeder is not None:
            feeder.join()
    except (KeyboardInterrupt, Terminated):
        # Stop the whole build (client and its session); no tag is ever set by it.
        _stop(proc)
        raise
    if proc.returncode != 0:
        text = (stderr or b"").decode(errors="replace")
        said = refusal(text)
        if said:
            raise EngineError(said, detail=text)
        if "layer does not exist" in text:   # moby/moby#41595: cache names a layer an rmi/prune removed
            raise EngineError("docker build failed: the engine's build cache names a layer that is gone "
                              "(images were removed while it was in use)",
                              fix="docker builder prune -f, then build again (if it persists: restart dockerd)",
                              detail=text)
        raise EngineError("docker build failed" + (f": {text.strip().splitlines()[-1]}" if text.strip() else
                                                   " (see the output above)"), detail=text)
    return (stderr or b"").decode(errors="replace")


_REFUSAL = re.compile(r"^(?:#\d+ [\d.]+ )?" + re.escape(REFUSAL_PREFIX) + r"(.+)$", re.M)


def refusal(progress: str) -> str | None:
    """The one line a dlbox build step printed before failing on purpose (render.python_install:
    `dlbox: uv could not download CPython … set [net] python_mirror …`), without BuildKit's prefix."""
    found = _REFUSAL.findall(progress)
    return found[-1].strip() if found else None


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _feed(write: Callable[[BinaryIO], None], fd: int) -> None:
    try:
        with os.fdopen(fd, "wb") as pipe:
            write(pipe)
    except (BrokenPipeError, OSError):
        pass  # the build ended early; its own error says why


def build(docker: Docker, plan: Plan, *, progress: str | None = None, quiet: bool = False,
          force: bool = False, target: str | None = None) -> BuildResult:
    """Stage, then build `dlbox/<project>:<hash>` (or the Dockerfile's stage TARGET, tagged
    `<hash>-TARGET`) unless it already exists."""
    t0 = time.monotonic()
    staged = stage_project(plan)
    tag = f"{image_name(plan)}:{staged.fingerprint[:12]}" + (f"-{target}" if target else "")
    if not force and docker.image_exists(tag):
        return BuildResult(tag, False, time.monotonic() - t0)
    ensure_tools(docker, plan.build.find_links, quiet=True)
    ca = combined_bundle(plan.build.ca_files)
    progress = progress or ("tty" if sys.stderr.isatty() and not quiet else "plain")
    with build_secret_args(plan) as secret_args:
        argv = build_argv(plan, dockerfile=str(staged.dockerfile), tag=tag, ca_bundle=ca, progress=progress,
                          context=plan.project_dir, target=target, secret_args=secret_args)
        progress_text: list[str] = []
        try:
            run_build(docker, argv, _build_env(plan), quiet=quiet, progress_out=progress_text)
        except EngineError as exc:
            said = plan.build.python_refusal
            if said and not quiet and exc.message.endswith("(see the output above)"):
                # the output went to the terminal, not to us: say what the CPython step's line says
                raise EngineError(exc.message, fix="if it stopped at \"dlbox: uv could not download CPython\": "
                                  + said.split(": ", 1)[-1], detail=exc.detail) from None
            raise
    return BuildResult(tag, True, time.monotonic() - t0,
                       context_bytes=context_bytes("".join(progress_text)) if quiet else None)


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
    give_to_owner(project_dir, project_dir / STAGE, project_dir / STAGE / "Dockerfile.bake")
    tag = f"{image_name(plan)}:baked"
    inner = f"{STAGE}/Dockerfile.bake"
    argv = ["build", "-f", inner, "-t", tag, "--progress", "plain", "-"]
    run_build(docker, argv, {"DOCKER_BUILDKIT": "1"}, quiet=quiet,
              context_tar=lambda pipe: context.write_tar(pipe, {inner: dockerfile}))
    return BuildResult(tag, True, time.monotonic() - t0, sent=context.summary(), warnings=tuple(context.warnings()))

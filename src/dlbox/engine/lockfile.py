"""`dlbox lock`: resolve the plan's whole set with uv into the variant's lock file.

`uv pip compile` runs on this host for the image's platform (`--python-platform`,
`--python-version`), with the plan's indexes, CA bundle and proxies. The torch family's
sources are tried in the plan's order; an index that does not answer moves on to the next
one (and says so), while an unsatisfiable set stops at once with the resolver's own words.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import uv

from dlbox.engine.ca import combined_bundle
from dlbox.errors import PlanError
from dlbox.plan.lock import Locked, LockInputs, candidates, compose, parse, status
from dlbox.redact import mask_secrets, mask_url

UNREACHABLE = re.compile(r"(error sending request for url \((?P<url>[^)]+)\)|dns error|client error \(Connect\)|"
                         r"operation timed out|Failed to fetch: `?(?P<url2>\S+?)`?$)", re.M)
TIMEOUT_S = 600


@dataclass(frozen=True)
class LockResult:
    path: Path
    locked: Locked
    seconds: float
    wrote: bool                  # False: the lock was already fresh
    said: tuple[str, ...] = ()   # what happened on the way (an index that did not answer, notes)


def _env(plan) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env.update(plan.build.proxy.env())
    env.update({"UV_HTTP_RETRIES": "1", "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"})
    env.setdefault("UV_HTTP_TIMEOUT", "30")
    if os.environ.get("UV_CACHE_DIR"):
        env["UV_CACHE_DIR"] = os.environ["UV_CACHE_DIR"]
    ca = combined_bundle(plan.build.ca_files)
    if ca:
        env["SSL_CERT_FILE"] = str(ca)
    return env


def _explain(stderr: str, inputs: LockInputs, declared) -> PlanError:
    text = mask_secrets(stderr).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if "No solution found" in text:
        body = " ".join(ln.strip().removeprefix("cause:").strip() for ln in lines
                        if not ln.startswith("error: No solution"))
        return PlanError(f"the project's dependencies cannot be installed together ({inputs.source.why if inputs.source else 'no torch'}): "
                         + body[:1500],
                         fix="relax the requirement the resolver names (the file and line are in `dlbox plan`), or "
                             "pin torch in dlbox.toml [env] torch")
    if "No space left on device" in text:
        cache = os.environ.get("UV_CACHE_DIR") or "~/.cache/uv"
        return PlanError("the disk is full: uv could not unpack a wheel into its cache (" + lines[-1].strip()[:200] + ")",
                         fix=f"free disk space (uv's cache is {cache}; `uv cache prune` keeps what is in use), "
                             "then `dlbox lock` again")
    git = re.search(r"(git\+\S+)", text)
    if git and ("git" in text.lower()) and ("Failed to" in text or "failed" in text):
        url = git.group(1).rstrip("`'\",)")
        where = next((str(d.origin) for d in (declared.deps if declared is not None else ())
                      if d.url and d.url.split("@")[0] in url), "a requirement")
        return PlanError(f"{where}: cannot fetch {mask_url(url)} ({lines[-1].strip() if lines else 'git failed'})",
                         fix="make the repository reachable (proxy), or replace the line with a released version "
                             "from the index")
    return PlanError("uv could not resolve the dependencies: " + " / ".join(ln.strip() for ln in lines[-4:]),
                     fix="check the index and proxy settings (`dlbox doctor`), then `dlbox lock` again")


def _unreachable(stderr: str) -> str | None:
    m = UNREACHABLE.search(stderr)
    if not m or "No solution found" in stderr:
        return None
    return m.group("url") or m.group("url2") or "an index"


def _declared_index(declared, inputs: LockInputs, url: str):
    """The index the project itself names (requirements --extra-index-url, [tool.uv.index]…) that
    the unreachable URL belongs to, if this resolution searched it (the plan replaces a project's
    PyTorch index with its own torch source, and [net] pip_index replaces a primary one)."""
    searched = {u.rstrip("/") for u in (inputs.index_url, *inputs.extra_index_urls) if u}
    for index in (declared.indexes if declared is not None else ()):
        if index.url.rstrip("/") in searched and url.startswith(index.url.rstrip("/")):
            return index
    return None


def compile_lock(inputs: LockInputs, env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess:
    (workdir / "requirements.in").write_text("\n".join(inputs.requirements) + "\n")
    (workdir / "constraints.txt").write_text("\n".join(inputs.all_constraints) + "\n")
    if inputs.preferences:   # uv prefers the pins already in its output file (the project's uv.lock)
        (workdir / "lock.txt").write_text("\n".join(inputs.preferences) + "\n")
    argv = [uv.find_uv_bin(), "pip", "compile", "requirements.in", "-c", "constraints.txt", "--generate-hashes",
            "--emit-index-annotation", "--no-header", "--quiet", "--output-file", "lock.txt", *inputs.uv_args()]
    try:
        return subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"error sending request for url (timed out after {TIMEOUT_S} s)")


def lock(plan, declared, *, project_dir: Path, local_wheels: tuple = (), force: bool = False,
         say: Callable[[str], None] = lambda s: None) -> LockResult:
    """Write (or keep, when fresh) the plan's lock file; raise PlanError with the resolver's words."""
    t0 = time.monotonic()
    path = project_dir / plan.build.lock
    options = candidates(plan, declared, project_dir=project_dir, local_wheels=local_wheels)
    state, locked = status(path, options)
    if state == "fresh" and not force:
        return LockResult(path, locked, time.monotonic() - t0, False)
    said: list[str] = []
    env = _env(plan)
    errors: list[str] = []
    for inputs in options:
        with tempfile.TemporaryDirectory(prefix="dlbox-lock-") as tmp:
            proc = compile_lock(inputs, env, Path(tmp))
            if proc.returncode == 0:
                text = compose(plan, inputs, (Path(tmp) / "lock.txt").read_text())
                tmpfile = path.with_name(path.name + ".tmp")
                tmpfile.write_text(text)
                tmpfile.replace(path)
                said += [f"note: {n}" for n in inputs.notes]
                return LockResult(path, parse(text, path.name), time.monotonic() - t0, True, tuple(said))
        url = _unreachable(proc.stderr)
        if url is None:
            raise _explain(proc.stderr, inputs, declared)
        own = _declared_index(declared, inputs, url)
        if own is not None:   # the project's own index is in every source: trying others cannot help
            raise PlanError(f"{own.origin}: the project's index {mask_url(own.url)} does not answer",
                            fix="make it reachable ([net] proxy), or remove that line if what needs it is "
                                "also on PyPI (for packages only that index has, there is no way round it)")
        msg = f"{mask_url(url)} does not answer" + (f"; the torch family was to come from: {inputs.source.why}"
                                                   if inputs.source else "")
        errors.append(msg)
        say(msg + (" — trying the next source" if inputs is not options[-1] else ""))
    raise PlanError("no index answered for the whole set: " + "; ".join(errors),
                    fix="set [net] proxy / pip_index to reach an index, or put the torch wheels in find_links")

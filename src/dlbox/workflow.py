"""The verbs' work, in order: load the spec, observe the host, plan, get the image, run.

Each function returns a result; `dlbox.commands.core` prints it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from dlbox.engine.build import BuildResult, bake, build
from dlbox.engine.docker import Docker
from dlbox.engine.images import Availability, ensure_base
from dlbox.engine.lock import project_lock
from dlbox.engine.paths import project_owner
from dlbox.engine.remote import remote_docker
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
from dlbox.host import Host
from dlbox.host import remote as host_remote
from dlbox.host.observe import observe
from dlbox.host.sysroot import SysRoot
from dlbox.plan import find_links_dirs, resolve
from dlbox.plan.layout import LABEL_RUN, container_name
from dlbox.plan.model import Overrides, Plan
from dlbox.spec import Spec, load_spec
from dlbox.spec.declared import Declared, read_declared

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
    availability = Availability(docker, say=say) if docker is not None and check_images else None
    plan = resolve(spec, host, overrides=overrides, image_available=availability, declared=declared)
    return Project(spec, host, plan, docker, availability, declared)


def ensure_lock(p: Project, *, force: bool = False, say: Say = _stderr):
    """The plan's lock file, made when missing or stale (its inputs changed), then attached to
    the plan so the build installs exactly it. Returns engine.lockfile.LockResult."""
    from dlbox.engine.lockfile import lock
    from dlbox.plan.lock import LockRef

    result = lock(p.plan, p.declared, project_dir=p.spec.project_dir, local_wheels=p.host.local_wheels,
                  force=force, say=say)
    if result.wrote:
        say(f"locked {len(result.locked.pins)} packages into {result.path.name} in {result.seconds:.1f} s")
    for line in result.said:
        say(line)
    p.plan = replace(p.plan, build=replace(p.plan.build, locked=LockRef.of(result.locked)))
    return result


def observe_server(target: str) -> tuple[Host, Docker]:
    """The server's facts over SSH and its engine."""
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
    return observe_for(spec, Docker() if engine else None)


def load_server_project(path: str | Path, target: str, *, overrides: Overrides = Overrides()) -> Project:
    """Plan the project for a server: its driver, its limits, its user; code baked in the image."""
    spec = load_spec(path)
    declared = read_declared(spec.project_dir, requirements=spec.env.requirements)
    host, docker = observe_server(target)
    plan = resolve(spec, host, overrides=overrides, declared=declared)
    return Project(spec, host, plan, docker, declared=declared)


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


def _probe_json(stdout: bytes | str) -> dict | None:
    import json

    text = stdout.decode(errors="replace") if isinstance(stdout, bytes) else stdout
    try:
        return json.loads(text.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return None


def _probe(name: str) -> str:
    return (Path(__file__).parent / "templates" / name).read_text()


def verify(p: Project, image: str, *, require_gpu: bool = False, perf: bool = False) -> list:
    """Run the in-container probe (templates/verify_inside.py) with the project's run flags and
    turn its observations into checks. A container that cannot even start is one `fail`.
    `perf` also runs templates/verify_perf.py in the same kind of container (`verify --perf`)."""
    from dlbox.doctor.container import checks_from_observations
    from dlbox.engine.run import explain_run_failure
    from dlbox.report import Check

    def in_container(script: str):
        key = one_off_key(p.plan)
        try:
            opts = RunOptions(image=image, command=("python", "-"), interactive=True, ca_bundle=ca_for(p.plan),
                              **run_files(p, key))
            proc = p.docker.run(run_argv(p.plan, opts), input=script, check=False, env=run_env(p.plan), timeout=900)
        finally:
            remove_container_files(key)
        if proc.returncode != 0:
            err = explain_run_failure(p.docker.error(proc.stderr.decode(errors="replace"), "docker run"))
            return None, Check("container-start", "fail", err.message, err.fix or "")
        obs = _probe_json(proc.stdout)
        if obs is None:
            return None, Check("container-start", "fail", "the probe printed no JSON: "
                               + proc.stderr.decode(errors="replace")[-300:])
        return obs, None

    obs, failed = in_container(_probe("verify_inside.py"))
    if failed:
        return [failed]
    checks = checks_from_observations(obs, driver=p.host.driver, expect_nvcc=p.plan.choice.has_nvcc,
                                      require_gpu=require_gpu, host_memlock_hard=p.host.limits.memlock_hard)
    if perf:
        from dlbox.doctor.perf import perf_checks

        pobs, failed = in_container(_probe("verify_perf.py"))
        checks += [failed] if failed else perf_checks(pobs)
    return checks + verify_imports(p, image)


def verify_here(python: str, *, require_gpu: bool = False, perf: bool = False, raw_dir: Path | None = None) -> list:
    """The same probes run by `python` on this machine, no container (`verify --here`): for a GPU
    host without Docker, or to compare the host with its containers. `raw_dir` keeps the raw
    observations (inside.json, perf.json) next to the checks."""
    import json
    import subprocess

    from dlbox.doctor.container import checks_from_observations
    from dlbox.host.facts import Facts
    from dlbox.report import Check

    def run(name: str):
        try:
            proc = subprocess.run([python, "-"], input=_probe(name), capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, Check("probe", "fail", f"{python} could not run {name}: {exc}",
                               "give a Python that exists, e.g. --python python3")
        obs = _probe_json(proc.stdout)
        if obs is None:
            return None, Check("probe", "fail", f"{name} printed no JSON: {proc.stderr[-300:]}")
        if raw_dir is not None:
            raw_dir.mkdir(parents=True, exist_ok=True)
            (raw_dir / name.replace("verify_", "").replace(".py", ".json")).write_text(json.dumps(obs, indent=2) + "\n")
        return obs, None

    obs, failed = run("verify_inside.py")
    if failed:
        return [failed]
    host = Facts(SysRoot())
    checks = checks_from_observations(obs, driver=host.driver, expect_nvcc=False, require_gpu=require_gpu,
                                      host_memlock_hard=host.limits.memlock_hard)
    if perf:
        from dlbox.doctor.perf import perf_checks

        pobs, failed = run("verify_perf.py")
        checks += [failed] if failed else perf_checks(pobs)
    return checks


def verify_plan(p: Project) -> dict:
    """What verify_imports.py checks: the project's top-level dependencies (what a plain install
    gets) and torch.compile when the project calls it or a compiler is planned."""
    editable = {d.name for d in (p.declared.deps if p.declared else ()) if d.editable}
    deps = [n for n in p.plan.packages if n not in editable]   # declared + [env] pip, one parser
    if p.plan.build.torch is not None and "torch" not in deps:
        deps.insert(0, "torch")
    pkg = p.plan.build.package
    if pkg is not None and pkg.name:
        deps.append(pkg.name)  # the project's own package, installed editable (and its extensions)
    compiler = any(a in ("g++", "build-essential") for a in p.plan.build.apt)
    wants = bool(p.declared and p.declared.torch_compile)
    return {"deps": list(dict.fromkeys(deps)), "compile": bool(p.plan.build.torch is not None and (compiler or wants))}


def verify_imports(p: Project, image: str) -> list:
    """Import every top-level dependency inside the image (templates/verify_imports.py)."""
    import json

    from dlbox.catalog import load as load_catalog
    from dlbox.doctor.imports import import_checks
    from dlbox.report import Check

    cfg = verify_plan(p)
    if not cfg["deps"] and not cfg["compile"]:
        return []
    script = (Path(__file__).parent / "templates" / "verify_imports.py").read_text()
    opts = RunOptions(image=image, command=("python", "-", json.dumps(cfg)), interactive=True, ca_bundle=ca_for(p.plan))
    proc = p.docker.run(run_argv(p.plan, opts), input=script, check=False, env=run_env(p.plan), timeout=900)
    try:
        obs = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return [Check("imports", "fail", "the import probe printed no JSON: "
                      + proc.stderr.decode(errors="replace")[-300:])]
    builders = frozenset(d.package for d in load_catalog().build_deps)
    return import_checks(obs, gpu=bool(p.plan.run.gpu_args), cuda_builders=builders)

"""Run containers from a Plan: run/exec/logs argv (unit-tested), pre-flight checks and the few
lifecycle calls. The only place a container's docker argv is built."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dlbox.catalog.explain import explain
from dlbox.engine.ca import combined_bundle
from dlbox.engine.docker import Docker
from dlbox.errors import DlboxError, HostError
from dlbox.plan.layout import CA_TARGET, ENTRYPOINT, LABEL_PROJECT, LABEL_RUN, SECRETS_DIR
from dlbox.plan.model import Plan, Port


@dataclass(frozen=True)
class RunOptions:
    """What one `docker run` adds to the plan's RunPlan: the image, this container's name and
    command, and how it is attached. Everything about how the project's containers run
    (shm, ulimits, user, mounts, labels, hosts, security) is the RunPlan's, not this."""

    image: str
    command: tuple[str, ...] = ()
    name: str | None = None
    detach: bool = False
    interactive: bool = True
    tty: bool = False
    remove: bool = True
    public: bool = False
    ca_bundle: str | None = None
    extra_env: tuple[tuple[str, str], ...] = ()      # literal values (on the argv: no secrets)
    env_by_name: tuple[str, ...] = ()                # `-e NAME`: the value comes from the client's env
    extra_labels: tuple[tuple[str, str], ...] = ()
    ports: tuple[Port, ...] | None = None            # None: the plan's [run] ports
    workdir: str | None = None                       # None: the plan's workdir
    env_file: str | None = None      # [run] env as a 0600 file (engine.secrets.container_files): off the argv
    secrets_dir: str | None = None   # [run] secrets + the proxy, one 0600 file each, mounted at /run/secrets


@dataclass(frozen=True)
class ExecOptions:
    """`docker exec` into a running container as the plan's user, in its workdir."""

    container: str
    command: tuple[str, ...]
    tty: bool = False
    interactive: bool = True


def run_argv(plan: Plan, o: RunOptions) -> list[str]:
    """`docker run …` for this plan: the RunPlan serialised. No secret and no [run] env value is
    on it: [run] env is read from O.env_file, secrets and the proxy are files in O.secrets_dir
    (exported by the image's entrypoint); without a secrets dir (a server's engine) the proxy
    goes by name, and only when it holds no password (see run_env)."""
    r = plan.run
    argv = ["run"]
    if o.remove:
        argv.append("--rm")
    if o.detach:
        argv.append("-d")
    if o.interactive and not o.detach:
        argv.append("-i")
    if o.tty and not o.detach:
        argv.append("-t")
    if o.name:
        argv += ["--name", o.name]
    for k, v in r.labels + o.extra_labels:
        argv += ["--label", f"{k}={v}"]
    argv += list(r.gpu_args)
    argv += ["--ipc=host"] if r.ipc_host else ["--shm-size", r.shm_size]
    for u in r.ulimits:
        argv += ["--ulimit", u]
    for opt in r.security_opt:
        argv += ["--security-opt", opt]
    for cap in r.cap_drop:
        argv += ["--cap-drop", cap]
    for cap in r.cap_add:
        argv += ["--cap-add", cap]
    argv += ["--user", r.user, "--workdir", o.workdir or r.workdir]
    for h in r.extra_hosts:
        argv += ["--add-host", h]
    for m in r.mounts:
        argv += ["-v", m.volume()]
    for target in r.masked:
        # an empty read-only directory over TARGET (.dlbox: copies and links of host files)
        argv += ["--mount", f"type=tmpfs,destination={target},tmpfs-size=65536,readonly"]
    for p in r.ports if o.ports is None else o.ports:
        argv += ["-p", p.publish(o.public)]
    if o.ca_bundle:
        argv += ["-v", f"{o.ca_bundle}:{CA_TARGET}:ro"]   # the entrypoint points SSL_CERT_FILE & co. at it
    if o.secrets_dir:
        argv += ["-v", f"{o.secrets_dir}:{SECRETS_DIR}:ro"]
    by_name = (*([] if o.secrets_dir else run_env(plan)), *o.env_by_name)
    for name in by_name:
        argv += ["-e", name]          # value comes from the client's environment (see run_env)
    if r.env:
        if not o.env_file:
            raise ValueError("run_argv: [run] env goes through an env file (engine.secrets.container_files)")
        argv += ["--env-file", o.env_file]
    for k, v in sorted(o.extra_env):
        argv += ["-e", f"{k}={v}"]
    argv.append(o.image)
    argv += list(o.command)
    return argv


def exec_argv(plan: Plan, o: ExecOptions) -> list[str]:
    """`docker exec …` into a container of this plan, as its user, in its workdir, through the
    image's entrypoint (which exports the secrets and the proxy from /run/secrets)."""
    argv = ["exec"] + (["-i"] if o.interactive else []) + (["-t"] if o.tty else [])
    argv += ["--user", plan.run.user, "--workdir", plan.run.workdir, o.container, ENTRYPOINT]
    return argv + list(o.command)


def logs_argv(name: str, *, tail: str = "200", follow: bool = False) -> list[str]:
    return ["logs", "--tail", tail] + (["-f"] if follow else []) + [name]


def gpu_smoke_argv(image: str) -> list[str]:
    """A throw-away container with every GPU, listing them: the NVIDIA runtime works end to end."""
    return ["run", "--rm", "--security-opt", "no-new-privileges", "--cap-drop", "ALL", "--gpus", "all", image,
            "nvidia-smi", "-L"]


def remove_container(docker: Docker, name: str, *, timeout: float = 120, check: bool = False) -> bool:
    """`docker rm -f NAME`; True when one existed. With `check`, a failure raises."""
    return docker.run(["rm", "-f", name], check=check, timeout=timeout).returncode == 0


def run_env(plan: Plan) -> dict[str, str]:
    """Environment for the docker client when there is no secrets dir (a server's engine): the
    proxy by name, only if it holds no password (that one never leaves this machine)."""
    env = plan.run.proxy.for_container().env()
    return {} if any("@" in v.split("//", 1)[-1].split("/", 1)[0] for v in env.values()) else env


def proxy_files(plan: Plan) -> dict[str, str]:
    """The container's proxy settings, delivered as files in its secrets dir."""
    return plan.run.proxy.for_container().env()


def run_fingerprint(plan: Plan, *, public: bool, command: tuple[str, ...] = (),
                    ports: tuple[Port, ...] | None = None) -> str:
    """A hash of what a container was started with (ports and where they bind, env, mounts,
    GPUs, secrets' names, user, command): a running container whose label differs is out of date."""
    r = plan.run
    data = json.dumps({
        "ports": [p.publish(public) for p in (r.ports if ports is None else ports)], "env": sorted(r.env),
        "mounts": [m.volume() for m in r.mounts], "gpus": list(r.gpu_args), "secrets": sorted(r.secrets),
        "user": r.user, "ipc": r.ipc_host, "shm": r.shm_size, "ulimits": list(r.ulimits), "command": list(command),
        "proxy": sorted(proxy_files(plan)), "security": [*r.security_opt, *r.cap_drop, *r.cap_add],
    }, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def ca_for(plan: Plan) -> str | None:
    bundle = combined_bundle(plan.build.ca_files)
    return str(bundle) if bundle else None


# -- pre-flight -------------------------------------------------------------------------------


def port_holder(docker: Docker, port: int) -> str | None:
    """Who holds PORT on this host: a container name, a process, or None when it is free."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # SO_REUSEADDR: a port whose last connection sits in TIME_WAIT is free for a new listener
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", port))
        return None
    except OSError:
        pass
    finally:
        s.close()
    proc = docker.run(["ps", "--filter", f"publish={port}", "--format", "{{.Names}}"], check=False, timeout=20)
    names = proc.stdout.decode().split() if proc.returncode == 0 else []
    if names:
        return f"container {names[0]}"
    if shutil.which("ss"):
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
        m = re.search(r'users:\(\("([^"]+)",pid=(\d+)', out)
        if m:
            return f"process {m.group(1)} (pid {m.group(2)})"
    return "another program"


def check_ports(docker: Docker, ports: tuple[Port, ...]) -> None:
    for p in ports:
        holder = port_holder(docker, p.host_port)
        if holder:
            raise HostError(f"port {p.host_port} is already in use by {holder}",
                            fix=f"stop it, or publish another host port in [run] ports (e.g. \"{p.host_port + 1}:{p.container_port}\")")


def check_mounts(plan: Plan) -> None:
    for m in plan.run.mounts:
        if m.target == "/workspace":
            continue
        if not Path(m.source).exists():
            raise HostError(f"mount source {m.source} does not exist (Docker would create it as an empty root-owned directory)",
                            fix=f"mkdir -p {m.source}, or fix [run] mounts")


# -- lifecycle --------------------------------------------------------------------------------


def container_state(docker: Docker, name: str) -> dict | None:
    info = docker.inspect("container", name)
    if info is None:
        return None
    bound = []
    for key, binds in sorted((info.get("HostConfig", {}).get("PortBindings") or {}).items()):
        for b in binds or []:
            bound.append({"ip": b.get("HostIp") or "0.0.0.0", "port": b.get("HostPort", ""), "container": key})
    return {"running": bool(info.get("State", {}).get("Running")), "image": info.get("Config", {}).get("Image", ""),
            "status": info.get("State", {}).get("Status", ""),
            "run": (info.get("Config", {}).get("Labels") or {}).get(LABEL_RUN), "bound": bound}


def is_running(docker: Docker, name: str) -> bool:
    state = container_state(docker, name)
    return bool(state and state["running"])


def last_lines(docker: Docker, name: str, n: int = 30) -> str:
    """The last N lines the container wrote (stdout and stderr), indented for an error message."""
    proc = docker.run(logs_argv(name, tail=str(n)), check=False, timeout=30)
    text = (proc.stdout + proc.stderr).decode(errors="replace").rstrip()
    return "\n".join("    " + line for line in text.splitlines())


def explain_run_failure(err: DlboxError) -> DlboxError:
    """Add the GPU error explainer's cause and fix to a failed `docker run`."""
    detail = getattr(err, "detail", "") or err.message
    e = explain(detail)
    if e is None:
        return err
    return HostError(f"{err.message}\n  cause: {e.cause}", fix=e.fix)


def start_detached(docker: Docker, plan: Plan, o: RunOptions) -> str:
    proc = docker.run(run_argv(plan, o), check=False, env=run_env(plan), timeout=600)
    if proc.returncode != 0:
        err = docker.error(proc.stderr.decode(errors="replace"), "docker run")
        # a failed start can leave a Created container behind (seen with --gpus on no-GPU hosts)
        if o.name:
            remove_container(docker, o.name, timeout=60)
        raise explain_run_failure(err)
    return proc.stdout.decode().strip()


def interactive(docker: Docker, argv: list[str], env: dict[str, str] | None = None, *, tty: bool = False) -> int:
    """Run a docker command attached to this terminal; return its exit status.

    Without a terminal, stderr is read so that a failed start can be explained; with one,
    everything stays attached (a shell prints its prompt on stderr)."""
    if tty:
        return docker.popen(argv, env=env).wait()
    proc = docker.popen(argv, env=env, stderr=subprocess.PIPE)
    _, err = proc.communicate()
    text = (err or b"").decode(errors="replace")
    if proc.returncode in (125, 126, 127) and text:
        raise explain_run_failure(docker.error(text, f"docker {argv[0]}"))
    if text:
        sys.stderr.write(text)
    return proc.returncode


def list_containers(docker: Docker) -> list[dict]:
    proc = docker.run(["ps", "-a", "--filter", f"label={LABEL_PROJECT}", "--format", "{{json .}}"], timeout=30)
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return [{"name": r.get("Names", ""), "image": r.get("Image", ""), "status": r.get("Status", ""),
             "ports": r.get("Ports", "")} for r in rows]

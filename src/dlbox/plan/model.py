"""The Plan's data: what was decided, as immutable, serialisable values (no decisions here).

`dlbox.plan.resolve` fills these in; render and engine only read them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dlbox.errors import PlanError
from dlbox.plan.gpu import ImageChoice
from dlbox.plan.layout import WORKSPACE
from dlbox.plan.project_package import ProjectPackage
from dlbox.plan.torch_family import Pin, Source
from dlbox.redact import mask_url

# The NGC containers' start-up banner asks for --ulimit stack=67108864, as does NVIDIA's user guide:
# https://docs.nvidia.com/deeplearning/frameworks/user-guide/index.html
STACK_BYTES = 67108864
ALWAYS_NO_PROXY = ("localhost", "127.0.0.1", "::1", "host.docker.internal")
# The host as containers see it (a loopback proxy, a local index): Docker's host-gateway alias.
HOST_GATEWAY = "host.docker.internal:host-gateway"
# What a long-running environment container runs when the spec names no [run] command.
IDLE_COMMAND = ("sleep", "infinity")


def _rewrite_loopback(url: str) -> str:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return url
    netloc = parts.netloc.rsplit("@", 1)
    hostport = netloc[-1]
    hostport = re.sub(r"^(\[::1\]|127\.0\.0\.1|localhost)", "host.docker.internal", hostport)
    netloc[-1] = hostport
    return urlunsplit(parts._replace(netloc="@".join(netloc)))


def is_loopback(url: str | None) -> bool:
    return bool(url) and urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Proxy:
    """Proxy settings. `repr` and `public()` never show a password."""

    http: str | None = None
    https: str | None = None
    no_proxy: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Proxy(http={mask_url(self.http)!r}, https={mask_url(self.https)!r}, no_proxy={self.no_proxy!r})"

    def __bool__(self) -> bool:
        return bool(self.http or self.https)

    def env(self) -> dict[str, str]:
        """Both spellings: curl reads http_proxy, Python and Go read either."""
        out: dict[str, str] = {}
        for name, value in (("http_proxy", self.http), ("https_proxy", self.https or self.http)):
            if value:
                out[name.upper()] = out[name] = value
        if out:
            out["NO_PROXY"] = out["no_proxy"] = ",".join(self.no_proxy)
        return out

    def for_container(self) -> "Proxy":
        """A container's 127.0.0.1 is not the host's: reach a loopback proxy via host.docker.internal."""
        return replace(
            self,
            http=_rewrite_loopback(self.http) if self.http else None,
            https=_rewrite_loopback(self.https) if self.https else None,
        )

    def public(self) -> dict:
        return {"http": mask_url(self.http), "https": mask_url(self.https), "no_proxy": list(self.no_proxy)}


@dataclass(frozen=True)
class Port:
    host_port: int
    container_port: int
    proto: str = "tcp"

    def publish(self, public: bool) -> str:
        ip = "" if public else "127.0.0.1:"
        suffix = "" if self.proto == "tcp" else f"/{self.proto}"
        return f"{ip}{self.host_port}:{self.container_port}{suffix}"


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False

    def volume(self) -> str:
        return f"{self.source}:{self.target}" + (":ro" if self.read_only else "")


@dataclass(frozen=True)
class BuildPlan:
    base_image: str
    base_os: str
    python: str
    python_install: str
    torch: object | None              # dlbox.plan.gpu.TorchPick
    apt: tuple[str, ...]
    pip: tuple[str, ...]
    requirements: str | None          # relative to the project
    find_links: tuple[str, ...]       # host directories
    pip_index: str | None
    pip_extra_index: tuple[str, ...]
    apt_mirror: str | None
    ca_files: tuple[str, ...]         # host CA bundle files (certificates only)
    proxy: Proxy
    network_host: bool                # build steps use the host network (loopback proxy)
    command: tuple[str, ...] | None
    python_dev: bool = False          # headers for building extensions (devel images)
    no_build_isolation: tuple[str, ...] = ()   # CUDA-compiling packages that import torch while building
    family: tuple[Pin, ...] = ()      # torch family pins: one torch release, one build (plan.torch_family)
    family_sources: tuple[Source, ...] = ()  # where the family may come from, best first (dlbox lock tries in order)
    lock: str | None = None           # the lock file this plan builds from, relative to the project
    locked: object | None = None      # dlbox.plan.lock.LockRef once `dlbox lock` has run (workflow attaches it)
    package: ProjectPackage | None = None  # the project's own package, installed editable (plan.project_package)
    requirement_files: tuple[str, ...] = ()  # the requirements file and its -r/-c includes, project-relative
    python_mirror: str | None = None  # uv route: where uv downloads CPython (None: its default); a build secret only
    python_refusal: str | None = None  # uv route: the build's one line when that download fails (plan.python_download)


@dataclass(frozen=True)
class RunPlan:
    """How every container of the project runs, decided once. `engine.run.run_argv`, the
    devcontainer and the compose renderers only serialise these fields, each in its own syntax."""

    gpu_args: tuple[str, ...]
    ipc_host: bool
    shm_size: str | None              # None exactly when ipc_host (the host's /dev/shm is shared)
    ulimits: tuple[str, ...]          # "memlock=-1", "stack=67108864"
    ports: tuple[Port, ...]
    mounts: tuple[Mount, ...]
    env: tuple[tuple[str, str], ...]  # [run] env, literal values (never secrets: those go by name)
    user: str                         # "uid:gid"
    proxy: Proxy
    command: tuple[str, ...] | None   # [run] command, split with shlex
    idle_command: tuple[str, ...] = IDLE_COMMAND   # what `dlbox up` runs when command is None
    workdir: str = WORKSPACE
    extra_hosts: tuple[str, ...] = (HOST_GATEWAY,)
    labels: tuple[tuple[str, str], ...] = ()       # org.dlbox.project, org.dlbox.project_dir
    security_opt: tuple[str, ...] = ()             # --security-opt VALUE, e.g. "no-new-privileges"
    cap_drop: tuple[str, ...] = ()                 # --cap-drop VALUE, e.g. "ALL"
    cap_add: tuple[str, ...] = ()                  # --cap-add VALUE
    secrets: tuple[tuple[str, str], ...] = ()      # (NAME, "env" | "env:VAR" | "file:PATH"): names, never values
    masked: tuple[str, ...] = ()                   # container paths covered by an empty read-only tmpfs

    @property
    def long_running_command(self) -> tuple[str, ...]:
        return self.command or self.idle_command


SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL|AUTH", re.I)
# Every container dlbox starts: no privilege can be gained (setuid files, file capabilities) and
# no capability is kept. A GPU needs none (the runtime passes device nodes), nor do ports > 1023.
SECURITY_OPT = ("no-new-privileges",)
CAP_DROP = ("ALL",)


def looks_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


@dataclass(frozen=True)
class Plan:
    project: str
    project_dir: str
    choice: ImageChoice
    build: BuildPlan
    run: RunPlan
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    host: dict | None = None  # what was observed or given (plan --json "host")
    # What render and engine need of the Spec, so the Spec stops here:
    spec_public: dict = field(default_factory=dict, compare=False)  # the spec as written, proxy password masked
    spec_file: str = "dlbox.toml"                                    # the file it was written in
    packages: tuple[str, ...] = ()                                   # requirement names (canonical)

    @property
    def gpu(self) -> bool:
        return self.choice.gpu

    @property
    def requirements_path(self) -> Path | None:
        """The requirements file, absolute (BuildPlan.requirements is relative to the project)."""
        return Path(self.project_dir) / self.build.requirements if self.build.requirements else None

    def to_dict(self) -> dict:
        """The `plan --json` object. Proxy passwords are masked."""
        t = self.choice.torch
        build = asdict(self.build)
        build["proxy"] = self.build.proxy.public()
        if self.build.locked is not None:
            build["locked"] = {"file": self.build.locked.file, "sha256": self.build.locked.sha256,
                               "source": self.build.locked.source}
        build["pip_index"] = mask_url(self.build.pip_index)
        build["pip_extra_index"] = [mask_url(u) for u in self.build.pip_extra_index]
        build["apt_mirror"] = mask_url(self.build.apt_mirror)
        build["python_mirror"] = mask_url(self.build.python_mirror)
        if isinstance(build.get("torch"), dict):
            build["torch"]["index_url"] = mask_url(build["torch"].get("index_url"))
        run = asdict(self.run)
        run["proxy"] = self.run.proxy.for_container().public()
        run["env"] = {k: "***" if looks_secret(k) else v for k, v in self.run.env}
        run["secrets"] = [name for name, _ in self.run.secrets]
        return {
            "project": self.project,
            "base_image": self.choice.base_image,
            "cuda": self.choice.cuda,
            "torch": None if t is None else {
                "version": t.version, "variant": t.variant, "index_url": mask_url(t.index_url),
                "requirement": t.requirement, "find_links": t.find_links,
            },
            "python": self.choice.python,
            "flavor": self.choice.flavor,
            "gpu": self.choice.gpu,
            "nvcc": self.choice.has_nvcc,
            "fallback_from": self.choice.fallback_from,
            "family": [p.requirement for p in self.build.family],
            "family_sources": [s.to_dict() for s in self.build.family_sources],
            "lock": self.build.lock,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "build": build,
            "run": run,
            "host": self.host,
        }


@dataclass(frozen=True)
class Overrides:
    """The what-if flags of `dlbox plan` (`--torch`, `--cuda`, `--flavor`, `--no-gpu`): typed, so a
    misspelt one is an error where it is written instead of a key nobody reads."""

    torch: str | None = None
    cuda: str | None = None
    flavor: str | None = None
    no_gpu: bool = False

    def __post_init__(self) -> None:
        if self.flavor is not None and self.flavor not in FLAVORS:
            raise PlanError(f"flavor {self.flavor!r} is not one of {', '.join(FLAVORS)}",
                            fix="--flavor runtime (what runs torch) or --flavor devel (adds nvcc)")


FLAVORS = ("runtime", "devel")


# ---------------------------------------------------------------------------------------------

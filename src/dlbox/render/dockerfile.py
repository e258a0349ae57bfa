"""Rendering: a Plan in, text out. Never probes, never decides.

Each `*_context` function returns plain data; the jinja templates in `dlbox/templates/`
only loop over it (StrictUndefined: a missing value is a bug, not an empty string).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from dlbox import __version__
from dlbox.plan.layout import (
    BUILD_CA,
    HOME,
    LABEL_DIR,
    LINKS_DIR,
    SOURCE_DATE_EPOCH,
    STAGE,
    TOOLS,
    UV_CACHE,
    VENV,
    WORKSPACE,
)
from dlbox.plan.model import Plan
from dlbox.redact import mask_url
from dlbox.render.apt import APT_UPDATE, SYSTEM_APT, apt_mounts, apt_prepare
from dlbox.render.python_install import uv_python_step
from dlbox.render.reproducible import clamp_command, forget_uv_cache_info, noise_commands
from dlbox.render.venv import python_packages, uses_uv, venv_commands

JUPYTER_REQUIREMENT = "jupyterlab"
JUPYTER_TARGET = "jupyter"   # the stage `dlbox jupyter` builds (docker build --target jupyter)


@lru_cache(maxsize=1)
def template_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("dlbox", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def one_line(text: str) -> str:
    """Text for a Dockerfile comment: a line break there would start a new instruction."""
    return re.sub(r"[\x00-\x1f\x7f]", "?", text)


def has_credentials(url: str | None) -> bool:
    """An index URL with user info (`https://user:token@host/…`, `https://token@host/…`)."""
    return bool(url) and "@" in urlsplit(url).netloc


def index_secrets(plan: Plan) -> list[tuple[str, str]]:
    """(BuildKit secret id, URL) for every package index URL that carries credentials: such a
    URL reaches the build as a secret file, never as Dockerfile text, history, label or argv."""
    b = plan.build
    urls = [b.pip_index, *b.pip_extra_index, getattr(b.torch, "index_url", None),
            *(getattr(s, "index_url", None) for s in getattr(b, "family_sources", ()))]
    creds = [u for u in dict.fromkeys(urls) if has_credentials(u)]
    return [(f"dlbox_index_{i}", u) for i, u in enumerate(creds)]


def _index_word(url: str, secrets: dict[str, str]) -> str:
    """A shell word for URL in a RUN line: quoted, or read from its secret file."""
    sid = secrets.get(url)
    return f'"$(cat /run/secrets/{sid})"' if sid else shlex.quote(url)


def label_value(obj: object) -> str:
    """A JSON value as a double-quoted Dockerfile LABEL value ($ is expanded there: escape it)."""
    return json.dumps(json.dumps(obj, sort_keys=True, separators=(",", ":"))).replace("$", "\\$")


def plan_lines(plan: Plan) -> list[str]:
    d = plan.to_dict()
    t = d["torch"]
    lines = [
        f"base image: {d['base_image']}" + (f" (fallback for {d['fallback_from']})" if d["fallback_from"] else ""),
        f"python: {d['python']}   flavor: {d['flavor']}   gpu: {'yes' if d['gpu'] else 'no'}   cuda: {d['cuda'] or '-'}",
        f"torch: {t['requirement'] + ' (' + t['variant'] + ')' if t else 'none'}",
    ]
    lines += [f"- {r}" for r in d["reasons"]]
    lines += [f"! {w}" for w in d["warnings"]]
    return lines


def index_words(plan: Plan, *, torch_index: str | None = None, find_links: bool = True) -> list[str]:
    """uv's index options as shell words; URLs with credentials are read from BuildKit secrets."""
    b = plan.build
    secrets = {u: sid for sid, u in index_secrets(plan)}
    words: list[str] = []
    default = b.pip_index or "https://pypi.org/simple"
    if torch_index:
        words += ["--index-url", _index_word(torch_index, secrets), "--extra-index-url", _index_word(default, secrets)]
    elif b.pip_index:
        words += ["--index-url", _index_word(b.pip_index, secrets)]
    for extra in b.pip_extra_index:
        words += ["--extra-index-url", _index_word(extra, secrets)]
    if find_links:
        for i, _ in enumerate(b.find_links):
            words += ["--find-links", f"{LINKS_DIR}/{i}"]
    return words


def secret_ids(plan: Plan) -> list[str]:
    return [sid for sid, _ in index_secrets(plan)]


def _link_mounts(plan: Plan) -> list[dict]:
    """None: the find_links wheels are in the tools image, at LINKS_DIR/<i> (engine.tools)."""
    return []


def _locked_source(plan: Plan):
    """The family source the lock was made with (plan.build.family_sources entry), or None."""
    kind = plan.build.locked.source
    return next((s for s in plan.build.family_sources if s.kind == kind), None)


def _locked_index_args(plan: Plan) -> list[str]:
    """Index arguments (shell words) for installing the lock: the family's index first (uv
    searches --extra-index-url before --index-url), then the plan's default and extra indexes.
    An URL with credentials is read from its BuildKit secret."""
    b = plan.build
    secrets = {u: sid for sid, u in index_secrets(plan)}
    src = _locked_source(plan)
    args = ["--index-url", _index_word(b.pip_index or "https://pypi.org/simple", secrets)]
    if src is not None and src.kind == "index" and src.index_url:
        args += ["--extra-index-url", _index_word(src.index_url, secrets)]
    for extra in b.pip_extra_index:
        args += ["--extra-index-url", _index_word(extra, secrets)]
    for i, _ in enumerate(b.find_links):
        args += ["--find-links", f"{LINKS_DIR}/{i}"]
    return args


def locked_pip_steps(plan: Plan) -> list[dict]:
    """Install exactly the lock: torch's closure in its own layer (shared by every project on
    the same torch build), then the whole lock, --no-deps, hashes checked."""
    b = plan.build
    ref = b.locked
    src = _locked_source(plan)
    args = _locked_index_args(plan)
    # this host's wheels of another build stay out even though find_links is mounted (plan.lock.wheel_excludes)
    excludes = [shlex.quote(e) for e in ref.excludes]
    if excludes:
        args += ["--constraint", "/tmp/dlbox-constraints.txt"]
    steps = []
    if ref.torch_layer:
        torch_pin = next((p for p in ref.torch_layer if p.startswith("torch==")), "torch")
        steps.append({
            "title": f"{torch_pin} and what it needs, pinned by {ref.file} (from {src.why if src else 'the index'})",
            "shared": True,
            "mounts": _link_mounts(plan),
            "secrets": secret_ids(plan),
            "constraints": excludes,
            "args": args + [shlex.quote(a) for a in ["--no-deps", *ref.torch_layer]],
        })
    if ref.count <= len(ref.torch_layer):
        return steps  # nothing beyond torch's closure (or an empty lock)
    mounts = _link_mounts(plan) + [{"source": ref.file, "target": "/tmp/dlbox/lock.txt"}]
    steps.append({
        "title": f"the project's dependencies: exactly {ref.file} (sha256 {ref.sha256[:12]})",
        "mounts": mounts,
        "secrets": secret_ids(plan),
        "constraints": excludes,
        "args": args + ["--no-deps", "-r", "/tmp/dlbox/lock.txt"],
    })
    return steps


def package_step(plan: Plan) -> dict | None:
    """The project's own package, editable from /workspace (plan.project_package says why)."""
    from dlbox.plan.project_package import EXT_DIR

    pkg = plan.build.package
    if pkg is None:
        return None
    args = _locked_index_args(plan) if plan.build.locked is not None else index_words(plan)
    rest = ["--no-deps"] + (["--no-build-isolation"] if pkg.extensions else [])
    rest += ["-e", WORKSPACE if pkg.path in (".", "./") else f"{WORKSPACE}/{pkg.path.removeprefix('./')}"]
    before, after = [], []
    if pkg.extensions:
        before.append("touch /tmp/dlbox-ext-stamp")
        if pkg.cuda_home:
            before.append(f"export CUDA_HOME={pkg.cuda_home}")
        if pkg.arch_list:
            before.append(f"export TORCH_CUDA_ARCH_LIST={shlex.quote(pkg.arch_list)}")
        after.append(f"{VENV}/bin/python {WORKSPACE}/{STAGE}/collect_ext.py {WORKSPACE} {EXT_DIR} /tmp/dlbox-ext-stamp")
    what = f"{pkg.name or 'the project'}" + (f" and its extensions ({', '.join(pkg.extensions)}) compiled into {EXT_DIR}"
                                               if pkg.extensions else "")
    return {
        "title": f"{what}: installed editable from {WORKSPACE} (the build context, mounted read-write and thrown away)",
        "mounts": _link_mounts(plan) + [{"source": ".", "target": WORKSPACE, "rw": True}],
        "constraints": [],
        "before": before,
        "after": after,
        "secrets": secret_ids(plan),
        "args": args + [shlex.quote(a) for a in rest],
    }


def pip_steps(plan: Plan) -> list[dict]:
    steps = _dependency_steps(plan)
    pkg = package_step(plan)
    return steps + ([pkg] if pkg else [])


def _dependency_steps(plan: Plan) -> list[dict]:
    b = plan.build
    if b.locked is not None:
        return locked_pip_steps(plan)
    steps = []
    torch = b.torch
    if torch is not None:
        where = f"find_links {torch.find_links}" if torch.find_links else (mask_url(torch.index_url) or "the package index")
        steps.append({
            "title": one_line(f"torch {torch.version} ({torch.variant}) from {where}"),
            "shared": True,
            "mounts": _link_mounts(plan),
            "secrets": secret_ids(plan),
            "constraints": [],
            "args": index_words(plan, torch_index=None if torch.find_links else torch.index_url)
                    + [shlex.quote(torch.requirement)],
        })
    if b.requirements or b.pip:
        mounts = _link_mounts(plan)
        args = index_words(plan)
        rest: list[str] = []
        if b.requirements:
            req_mounts = requirement_mounts(b.requirements, b.requirement_files)
            mounts += req_mounts
            rest += ["-r", req_mounts[0]["target"]]
        rest += list(b.pip)
        for name in b.no_build_isolation:
            rest += ["--no-build-isolation-package", name]
        constraints = [shlex.quote(torch.requirement)] if torch is not None else []
        if constraints:
            rest += ["--constraint", "/tmp/dlbox-constraints.txt"]
        steps.append({
            "title": one_line("project dependencies" + (f" from {b.requirements}" if b.requirements else "")
                              + (" (torch held at the planned build)" if torch is not None else "")),
            "mounts": mounts,
            "secrets": secret_ids(plan),
            "constraints": constraints,
            "args": args + [shlex.quote(a) for a in rest],
        })
    return steps


def requirement_mounts(top: str, files: tuple[str, ...]) -> list[dict]:
    """The requirements file at /tmp/dlbox/<its name>, and each file it pulls in with -r/-c at the
    same path relative to it, so pip finds the includes where the top file names them."""
    top_dir = posixpath.dirname(top)
    out = [{"source": top, "target": f"/tmp/dlbox/{posixpath.basename(top)}"}]
    for f in files:
        if f != top and not posixpath.isabs(f):
            target = posixpath.normpath(posixpath.join("/tmp/dlbox", posixpath.relpath(f, top_dir or ".")))
            out.append({"source": f, "target": target})
    return out


def pinned_names(step: dict | None) -> frozenset[str]:
    """Names a pip step installs at an exact version (`name==version` words)."""
    words = (w.strip("'\"") for w in (step or {}).get("args", ()))
    return frozenset(w.split("==", 1)[0].lower() for w in words if "==" in w and not w.startswith("-"))


def labels(plan: Plan) -> list[tuple[str, str]]:
    summary = {k: v for k, v in plan.to_dict().items() if k not in ("build", "run", "reasons", "warnings", "host",
                                                                             "family_sources")}
    return [
        ("org.dlbox.version", json.dumps(__version__)),
        ("org.dlbox.project", json.dumps(plan.project)),
        (LABEL_DIR, json.dumps(plan.project_dir).replace("$", "\\$")),
        ("org.dlbox.spec", label_value(plan.spec_public)),
        ("org.dlbox.plan", label_value(summary)),
    ]


def dockerfile_context(plan: Plan, tools: str) -> dict:
    b = plan.build
    shared_apt = list(dict.fromkeys(python_packages(plan) + list(SYSTEM_APT)))
    steps = pip_steps(plan)
    shared = next((st for st in steps if st.get("shared")), None)
    keep, restore = noise_commands()
    env = []
    if plan.gpu and not b.base_image.startswith(("nvidia/cuda", "nvcr.io/")):
        # nvidia/cuda images set these; on a slim base the container toolkit needs them to mount the driver
        env = [("NVIDIA_VISIBLE_DEVICES", "all"), ("NVIDIA_DRIVER_CAPABILITIES", "compute,utility")]
    cmd = json.dumps(list(b.command)) if b.command else '["bash"]'
    uid, _, gid = plan.run.user.partition(":")
    return {
        "version": __version__,
        "spec_file": one_line(plan.spec_file),
        "project": plan.project,
        "uid": int(uid),
        "gid": int(gid or uid),
        "index_secrets": secret_ids(plan),
        "ca": bool(b.ca_files),
        "ca_hint": one_line(b.ca_files[0]) if len(b.ca_files) == 1 else "YOUR-CA-BUNDLE.pem",
        "plan_lines": [one_line(line) for line in plan_lines(plan)],
        "base_image": b.base_image,
        "base_os": b.base_os.replace(".", ""),
        "apt_prepare": apt_prepare(plan),
        "apt_update": APT_UPDATE,
        "shared_apt": shared_apt,
        "project_apt": [shlex.quote(p) for p in dict.fromkeys(b.apt) if p not in shared_apt],
        "apt_mounts": apt_mounts(plan),
        "noise_keep": keep,
        "noise_restore": restore,
        "clamp": clamp_command(),
        "forget_uv_cache_info": forget_uv_cache_info(VENV),
        "epoch": SOURCE_DATE_EPOCH,
        "tools": tools,
        "tools_dir": TOOLS,
        "tools_mount": f"--mount=type=bind,from={tools},target={TOOLS}",
        "ca_mount": f"--mount=type=secret,id=dlbox_ca,target={BUILD_CA}",
        "build_ca": BUILD_CA,
        "uv_cache": UV_CACHE,
        "shared_step": shared,
        "uv_python": uv_python_step(plan, tools),
        "python": b.python,
        "venv": VENV,
        "venv_commands": venv_commands(plan, pinned_next=pinned_names(shared)),
        "venv_uses_uv": uses_uv(plan),
        "pip_steps": [st for st in steps if not st.get("shared")],
        "home": HOME,
        "workspace": WORKSPACE,
        "env": env,
        "cmd": cmd,
        "labels": labels(plan),
        "jupyter_target": JUPYTER_TARGET,
        "jupyter_args": jupyter_args(plan),
    }


def jupyter_args(plan: Plan) -> list[str] | None:
    """uv arguments for the Jupyter stage: JupyterLab from the index this host's pip uses, as the
    project's packages; None when the project's own packages already bring it."""
    if JUPYTER_REQUIREMENT in plan.packages:
        return None
    # shell words; an index URL with credentials is read from its BuildKit secret
    return index_words(plan, find_links=False) + [JUPYTER_REQUIREMENT]


def render_dockerfile(plan: Plan, *, tools: str = "dlbox/tools:latest") -> str:
    """TOOLS: the tools image the pip steps mount (engine.tools names it from uv and the wheels)."""
    return template_env().get_template("Dockerfile.j2").render(**dockerfile_context(plan, tools))


def render_bake(plan: Plan, *, env_image: str, owner: str, extra_labels: list[tuple[str, str]]) -> str:
    return template_env().get_template("Dockerfile.bake.j2").render(
        version=__version__, project=plan.project, env_image=env_image, owner=owner,
        workspace=WORKSPACE, labels=extra_labels,
    )


def render_dockerignore(*, bake: bool, user_ignore: str = "") -> str:
    text = template_env().get_template("dockerignore").render()
    if bake:
        text += f"{STAGE}\n"
        if user_ignore.strip():
            text += "# from the project's own .dockerignore\n" + user_ignore.strip() + "\n"
    return text


def entrypoint_script() -> str:
    return (Path(__file__).parent.parent / "templates" / "entrypoint.sh").read_text()

"""Plan → `.devcontainer/devcontainer.json` (a dict, serialised with `json.dumps`).

Contract: `devcontainer_dict` reads only the Plan and the values the caller already decided
(the image tag or the Dockerfile path, the CA bundle file); it never probes. `merge` keeps a
user's own keys in an existing file; `parse_jsonc` reads the JSON-with-comments VS Code writes.

Why each key (see the dev container spec, containers.dev/implementors/json_reference):
- `hostRequirements.gpu: "optional"`: the CLI adds `--gpus all` only where the engine can give
  a GPU, so one file works on a GPU box and on a laptop (`"gpu": true` with `--gpus all` in
  runArgs, as tutorials write it, fails to start on any host without the NVIDIA runtime).
- `containerUser`/`remoteUser` = the host's uid:gid, the same user `dlbox up` runs as, so files
  written in the bind-mounted workspace belong to the host user. The dlbox image has no named
  user to remap, so `updateRemoteUserUID` has nothing to change; it stays true to say the intent.
- `postStartCommand` runs the dlbox entrypoint once (the CLI replaces the image's entrypoint
  with its own keep-alive script); the image already names the planned UID in its last layer.
- `runArgs` carry `--security-opt=no-new-privileges --cap-drop=ALL`, as every container dlbox
  starts, and `.dlbox` is covered by an empty read-only tmpfs (it holds copies of host files).
"""

from __future__ import annotations

import json
from typing import Any

from dlbox.plan.layout import CA_ENV, CA_TARGET, LABEL_DIR, STAGE, VENV
from dlbox.plan.model import Plan

ENTRYPOINT = "/usr/local/bin/dlbox-entrypoint"
PYTHON_EXTENSION = "ms-python.python"
# Keys whose values are lists of one-token docker flags / mount strings: merged item-wise.
_FLAG_LISTS = ("runArgs",)
_MOUNT_LISTS = ("mounts",)
# Keys that exclude each other in the schema (oneOf dockerfileContainer / imageContainer).
_EXCLUSIVE = (("image",), ("build", "dockerFile", "dockerfile", "context"))


def run_args(plan: Plan) -> list[str]:
    """The `dlbox up` run flags (the RunPlan) in `--flag=value` form: one token each, so merging
    is item-wise. The project-directory label is left out: this file is committed and shared,
    and one machine's path means nothing on another."""
    r = plan.run
    args = ["--ipc=host"] if r.ipc_host else [f"--shm-size={r.shm_size}"]
    args += [f"--ulimit={u}" for u in r.ulimits]
    args += [f"--security-opt={o}" for o in r.security_opt]
    args += [f"--cap-drop={c}" for c in r.cap_drop]
    args += [f"--add-host={h}" for h in r.extra_hosts]
    args += [f"--label={k}={v}" for k, v in r.labels if k != LABEL_DIR]
    return args


def _mount(source: str, target: str, read_only: bool) -> str:
    return f"type=bind,source={source},target={target}" + (",readonly" if read_only else "")


def container_env(plan: Plan, *, ca_bundle: str | None) -> dict[str, str]:
    """[run] env, the CA variables, and the proxy. A proxy URL holding a password is written as a
    `${localEnv:NAME}` reference so the secret never lands in a file that may be committed."""
    env = dict(plan.run.env)
    for name, source in plan.run.secrets:
        var = source[4:] if source.startswith("env:") else (None if source.startswith("file:") else name)
        if var:
            env[name] = f"${{localEnv:{var}}}"     # from the editor's environment, never written here
    if ca_bundle:
        for name in CA_ENV:
            env.setdefault(name, CA_TARGET)
    for name, value in plan.run.proxy.for_container().env().items():
        secret = "@" in value.split("//", 1)[-1].split("/", 1)[0]
        env[name] = f"${{localEnv:{name}}}" if secret else value
    return env


def devcontainer_dict(plan: Plan, *, image: str | None = None, ca_bundle: str | None = None) -> dict[str, Any]:
    """The dev container for PLAN. With IMAGE, use that (dlbox-built) image; without, build the
    rendered `.dlbox/Dockerfile` with the project directory (`..` from `.devcontainer/`) as context."""
    source: dict[str, Any]
    if image:
        source = {"image": image}
    else:
        source = {"build": {"dockerfile": f"../{STAGE}/Dockerfile", "context": ".."}}
    mounts = [_mount(m.source, m.target, m.read_only) for m in plan.run.mounts if m.target != plan.run.workdir]
    if ca_bundle:
        mounts.append(_mount(ca_bundle, CA_TARGET, True))
    for name, origin in plan.run.secrets:
        if origin.startswith("file:"):
            mounts.append(_mount(origin[5:], f"/run/secrets/{name}", True))   # exported by the entrypoint
    # .dlbox holds staged copies of files outside the project: hidden, as in `dlbox up`
    mounts += [f"type=tmpfs,target={t},readonly" for t in plan.run.masked]
    d: dict[str, Any] = {"name": plan.project, **source}
    d.update({
        "hostRequirements": {"gpu": "optional"},
        "runArgs": run_args(plan),
        **({"capAdd": list(plan.run.cap_add)} if plan.run.cap_add else {}),
                "workspaceMount": f"source=${{localWorkspaceFolder}},target={plan.run.workdir},type=bind",
        "workspaceFolder": plan.run.workdir,
        "mounts": mounts,
        "containerEnv": container_env(plan, ca_bundle=ca_bundle),
        "containerUser": plan.run.user,
        "remoteUser": plan.run.user,
        "updateRemoteUserUID": True,
        "postStartCommand": [ENTRYPOINT, "true"],
        "customizations": {"vscode": {
            "extensions": [PYTHON_EXTENSION],
            "settings": {"python.defaultInterpreterPath": f"{VENV}/bin/python"},
        }},
    })
    if plan.run.ports:
        d["forwardPorts"] = [p.host_port for p in plan.run.ports if p.proto == "tcp"]
    return d


def to_json(d: dict) -> str:
    return json.dumps(d, indent=2) + "\n"


# -- reading and merging an existing file -----------------------------------------------------


def _string_end(text: str, i: int) -> int:
    """Index just past the JSON string that starts at text[i] (a quote); escapes skipped."""
    j, n = i + 1, len(text)
    while j < n and text[j] != '"':
        j += 2 if text[j] == "\\" else 1
    return j + 1


def strip_jsonc(text: str) -> str:
    """JSON with comments and trailing commas (what VS Code accepts) → strict JSON text.

    A small scanner rather than regexes: `//` inside a string ("https://…") is not a comment."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = _string_end(text, i)
            out.append(text[i:j])
            i = j
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return _drop_trailing_commas("".join(out))


def _drop_trailing_commas(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = _string_end(text, i)
            out.append(text[i:j])
            i = j
            continue
        if c == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                i += 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_jsonc(text: str) -> dict:
    """Parse devcontainer.json as VS Code does; raise ValueError (with line) when it is not."""
    try:
        data = json.loads(strip_jsonc(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON (with comments): {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise ValueError("the top level is not a JSON object")
    return data


# --ipc=host and --shm-size set the same thing (/dev/shm): whichever dlbox writes replaces both.
_SAME_FLAG = {"--shm-size": "--ipc"}


def _flag(arg: str) -> str:
    name = arg.split("=", 1)[0] if arg.startswith("-") else arg
    return _SAME_FLAG.get(name, name)


def _mount_target(m: Any) -> Any:
    if isinstance(m, dict):
        return m.get("target")
    for part in str(m).split(","):
        k, _, v = part.partition("=")
        if k.strip() in ("target", "dst", "destination"):
            return v.strip()
    return m


def _merge_list(key: str, theirs: list, ours: list) -> list:
    if key in _FLAG_LISTS:
        # ours replaces a user's value for the same flag (a changed --shm-size, say); a lone
        # value token after a flag of theirs stays with it
        owned = {_flag(a) for a in ours if isinstance(a, str)}
        kept, skip = [], False
        for a in theirs:
            if skip:
                skip = False
                continue
            if isinstance(a, str) and a.startswith("-") and _flag(a) in owned:
                skip = "=" not in a       # "--shm-size", "8g": drop the value too
                continue
            kept.append(a)
        return ours + kept
    if key in _MOUNT_LISTS:
        owned = {_mount_target(m) for m in ours}
        return ours + [m for m in theirs if _mount_target(m) not in owned]
    return ours + [x for x in theirs if x not in ours]


def merge(theirs: dict, ours: dict, _key: str = "") -> dict:
    """A user's file with dlbox's keys laid over it.

    Keys only the user has are kept; dicts merge recursively; dlbox's scalars win; lists keep
    the user's extra items (see `_merge_list`). `image` and `build` exclude each other, so the
    one dlbox does not write is dropped from the user's file."""
    out = dict(theirs)
    if not _key:
        for group in _EXCLUSIVE:
            if any(k in ours for k in group):
                for other in _EXCLUSIVE:
                    if other is not group:
                        for k in other:
                            out.pop(k, None)
    for k, v in ours.items():
        old = out.get(k)
        if isinstance(v, dict) and isinstance(old, dict):
            out[k] = merge(old, v, k)
        elif isinstance(v, list) and isinstance(old, list):
            out[k] = _merge_list(k, old, v)
        else:
            out[k] = v
    return out

"""devcontainer.json from a Plan: the keys the issue asks for, schema validity, JSONC, merging."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from dlbox.apps.files import write_devcontainer
from dlbox.host import EngineFacts, Host, Limits, NetFacts
from dlbox.host.nvidia_smi import facts_from_options
from dlbox.plan import resolve
from dlbox.render.devcontainer import devcontainer_dict, merge, parse_jsonc, strip_jsonc
from dlbox.spec import load_spec
from dlbox.workflow import Project

TOML = """
name = "demo"
[env]
python = "3.11"
torch = "auto"
[run]
gpus = "auto"
shm = "{shm}"
ports = ["7860"]
mounts = ["{data}:/data:ro"]
env = {{ HF_HOME = "/data/hf" }}
"""

GPU_HOST = Host(driver=facts_from_options(nvidia_smi_text=None, driver="565.57.01", compute_caps=["8.6"]),
                engine=EngineFacts(runtimes=("nvidia", "runc")), uid=1234, gid=1235)
CPU_HOST = Host(uid=1234, gid=1235, limits=Limits(memlock_hard=8 * 2**20))


def project(tmp_path: Path, host: Host = GPU_HOST, shm: str = "host") -> Project:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "dlbox.toml").write_text(TOML.format(shm=shm, data=tmp_path / "data"))
    spec = load_spec(tmp_path)
    return Project(spec, host, resolve(spec, host), None)


# A subset of the dev container schema (containers.dev, devContainer.base.schema.json) for the
# keys dlbox writes, with the same types and the same `image` XOR `build` rule; used when the
# full schema is not given in DLBOX_DEVCONTAINER_SCHEMA.
SUBSET_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "image": {"type": "string"},
        "build": {"type": "object", "required": ["dockerfile"], "additionalProperties": False,
                  "properties": {"dockerfile": {"type": "string"}, "context": {"type": "string"},
                                 "target": {"type": "string"}, "args": {"type": "object"},
                                 "cacheFrom": {"type": ["string", "array"]}}},
        "hostRequirements": {"type": "object", "additionalProperties": False, "properties": {
            "gpu": {"oneOf": [{"enum": [True, False, "optional"]}, {"type": "object"}]}}},
        "runArgs": {"type": "array", "items": {"type": "string"}},
        "capAdd": {"type": "array", "items": {"type": "string"}},
        "workspaceMount": {"type": "string"},
        "workspaceFolder": {"type": "string"},
        "mounts": {"type": "array", "items": {"type": "string"}},
        "containerEnv": {"type": "object", "additionalProperties": {"type": "string"}},
        "containerUser": {"type": "string"},
        "remoteUser": {"type": "string"},
        "updateRemoteUserUID": {"type": "boolean"},
        "postStartCommand": {"type": ["string", "array", "object"]},
        "customizations": {"type": "object"},
        "forwardPorts": {"type": "array", "items": {"oneOf": [
            {"type": "integer", "minimum": 0, "maximum": 65535},
            {"type": "string", "pattern": "^([a-z0-9-]+):(\\d{1,5})$"}]}},
    },
    "oneOf": [{"required": ["image"]}, {"required": ["build"]}],
}


def validate(doc: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import os

    full = os.environ.get("DLBOX_DEVCONTAINER_SCHEMA")
    schema = json.loads(strip_jsonc(Path(full).read_text())) if full else SUBSET_SCHEMA
    jsonschema.Draft201909Validator(schema).validate(doc)


def test_gpu_plan_has_every_key_the_issue_asks_for(tmp_path):
    p = project(tmp_path)
    d = devcontainer_dict(p.plan)
    assert d["build"] == {"dockerfile": "../.dlbox/Dockerfile", "context": ".."}
    assert "image" not in d
    assert d["hostRequirements"] == {"gpu": "optional"}
    # the CLI adds --gpus itself where a GPU exists: never in runArgs (fails on a laptop)
    assert not any("--gpus" in a for a in d["runArgs"])
    assert d["runArgs"][:3] == ["--ipc=host", "--ulimit=memlock=-1", "--ulimit=stack=67108864"]
    assert "--add-host=host.docker.internal:host-gateway" in d["runArgs"]
    assert "capAdd" not in d and "--cap-drop=ALL" in d["runArgs"] and "--security-opt=no-new-privileges" in d["runArgs"]
    assert d["workspaceFolder"] == "/workspace"
    assert d["workspaceMount"] == "source=${localWorkspaceFolder},target=/workspace,type=bind"
    assert d["mounts"] == [f"type=bind,source={tmp_path / 'data'},target=/data,readonly",
                           "type=tmpfs,target=/workspace/.dlbox,readonly"]
    assert d["containerEnv"] == {"HF_HOME": "/data/hf"}
    assert d["containerUser"] == d["remoteUser"] == "1234:1235"
    assert d["updateRemoteUserUID"] is True
    assert "ms-python.python" in d["customizations"]["vscode"]["extensions"]
    assert d["forwardPorts"] == [7860]
    validate(d)


def test_cpu_host_without_memlock_and_shm_size(tmp_path):
    p = project(tmp_path, CPU_HOST, shm="16g")
    d = devcontainer_dict(p.plan, image="dlbox/demo:abc")
    assert d["image"] == "dlbox/demo:abc" and "build" not in d
    assert d["runArgs"][:2] == ["--shm-size=16g", "--ulimit=stack=67108864"]
    assert not any("memlock" in a for a in d["runArgs"])
    assert d["hostRequirements"] == {"gpu": "optional"}
    validate(d)


def test_ca_bundle_and_proxy_secret_stays_out_of_the_file(tmp_path):
    host = replace(CPU_HOST, net=NetFacts(http_proxy="http://bob:s3cret@127.0.0.1:3128"))
    p = project(tmp_path, host)
    d = devcontainer_dict(p.plan, ca_bundle="/cache/ca.pem")
    text = json.dumps(d)
    assert "s3cret" not in text
    assert d["containerEnv"]["HTTP_PROXY"] == "${localEnv:HTTP_PROXY}"
    assert d["containerEnv"]["SSL_CERT_FILE"] == "/etc/ssl/certs/dlbox-ca-bundle.pem"
    assert "type=bind,source=/cache/ca.pem,target=/etc/ssl/certs/dlbox-ca-bundle.pem,readonly" in d["mounts"]
    validate(d)


def test_plain_proxy_is_rewritten_for_the_container(tmp_path):
    host = replace(CPU_HOST, net=NetFacts(http_proxy="http://127.0.0.1:3128"))
    d = devcontainer_dict(project(tmp_path, host).plan)
    assert d["containerEnv"]["HTTP_PROXY"] == "http://host.docker.internal:3128"


JSONC = """// my dev container
{
  "name": "mine", /* block
  comment */
  "image": "python:3.11",
  "runArgs": ["--shm-size", "1g", "--cpus=2",],
  "mounts": ["type=bind,source=/old,target=/data", "type=bind,source=/x,target=/x"],
  "customizations": {"vscode": {"extensions": ["ms-toolsai.jupyter",], "settings": {"a": 1}}},
  "postCreateCommand": "echo 'http://example.invalid/*not a comment*/' // done",
  "forwardPorts": [9000],
}
"""


def test_parse_jsonc_comments_trailing_commas_and_slashes_in_strings():
    d = parse_jsonc(JSONC)
    assert d["name"] == "mine"
    assert d["runArgs"] == ["--shm-size", "1g", "--cpus=2"]
    assert d["postCreateCommand"] == "echo 'http://example.invalid/*not a comment*/' // done"
    with pytest.raises(ValueError, match="line"):
        parse_jsonc('{"a": }')


def test_merge_keeps_user_keys_and_replaces_dlbox_owned_flags(tmp_path):
    ours = devcontainer_dict(project(tmp_path).plan)
    merged = merge(parse_jsonc(JSONC), ours)
    assert merged["name"] == "demo"                                   # dlbox's scalar wins
    assert "image" not in merged and merged["build"] == ours["build"]  # image XOR build
    assert merged["postCreateCommand"].startswith("echo")              # the user's key is kept
    assert "--cpus=2" in merged["runArgs"]                             # the user's own flag is kept
    # --ipc=host replaces the user's --shm-size (both set /dev/shm), value token included
    assert "--ipc=host" in merged["runArgs"]
    assert "--shm-size" not in merged["runArgs"] and "1g" not in merged["runArgs"]
    targets = [m.split("target=")[1].split(",")[0] for m in merged["mounts"]]
    assert targets.count("/data") == 1 and "/x" in targets             # ours replaces the same target
    assert merged["customizations"]["vscode"]["extensions"] == ["ms-python.python", "ms-toolsai.jupyter"]
    assert merged["customizations"]["vscode"]["settings"]["a"] == 1
    assert merged["forwardPorts"] == [7860, 9000]
    validate(merged)


def test_merge_drops_a_flag_value_pair_that_dlbox_now_owns(tmp_path):
    p = project(tmp_path, CPU_HOST, shm="16g")
    merged = merge({"runArgs": ["--shm-size", "1g", "--init"]}, devcontainer_dict(p.plan))
    assert merged["runArgs"].count("--shm-size=16g") == 1
    assert "1g" not in merged["runArgs"] and "--init" in merged["runArgs"]


def test_write_creates_then_merges_with_a_backup_and_never_rewrites_unchanged(tmp_path):
    p = project(tmp_path)
    first = write_devcontainer(p)
    assert first.action == "created" and first.backup is None
    path = tmp_path / ".devcontainer" / "devcontainer.json"
    assert (tmp_path / ".dlbox" / "Dockerfile").is_file()      # what `build` refers to exists
    assert write_devcontainer(p).action == "unchanged"
    path.write_text(JSONC)
    merged = write_devcontainer(p)
    assert merged.action == "merged"
    assert merged.backup.read_text() == JSONC and ".dlbox-bak-" in merged.backup.name
    data = json.loads(path.read_text())
    assert data["postCreateCommand"].startswith("echo") and data["hostRequirements"] == {"gpu": "optional"}
    assert write_devcontainer(p).action == "unchanged"
    assert len(list(path.parent.glob("devcontainer.json.dlbox-bak-*"))) == 1


def test_an_unparseable_file_is_not_touched(tmp_path):
    from dlbox.errors import HostError

    p = project(tmp_path)
    path = tmp_path / ".devcontainer" / "devcontainer.json"
    path.parent.mkdir()
    path.write_text("{ not json")
    with pytest.raises(HostError, match="cannot merge"):
        write_devcontainer(p)
    assert path.read_text() == "{ not json"
